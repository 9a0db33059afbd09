"""The loop every reconciler runs: a pass now and then, or at once when woken; never dies of an error."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("kamado.reconcile")


class ReconcileLoop:
    """Base of reconcilers: subclasses implement :meth:`tick` (one idempotent pass over their resources).

    ``wake()`` makes the next pass run now (a resource was created, a task ended) instead of after
    ``interval_s``; a pass that raises is logged and the loop carries on.
    """

    name = "reconciler"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"kamado-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive anything; the error is logged and retried
                log.exception("%s pass failed", self.name)
            self._wake.wait(self.interval_s)
            self._wake.clear()


class StepPool:
    """Runs a reconciler's slow steps (preparing inputs, uploading outputs) off its loop thread, with at most
    one step in flight per resource, so one large upload never stalls the loop nor races itself.

    Thread-safe. ``inline`` runs each step on the calling thread: deterministic unit tests, no sleeps.
    """

    def __init__(self, workers: int, thread_prefix: str, *, inline: bool = False) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_prefix)
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._inline = inline

    def busy(self, name: str) -> bool:
        with self._lock:
            return name in self._busy

    def spawn(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` for resource ``name`` unless a step for it is already in flight (then a no-op)."""
        with self._lock:
            if name in self._busy:
                return
            self._busy.add(name)

        def run() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("background step for %s failed", name)
            finally:
                with self._lock:
                    self._busy.discard(name)

        if self._inline:
            run()
        else:
            self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
