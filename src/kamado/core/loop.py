"""The loop every reconciler runs: a pass now and then, or at once when woken; never dies of an error."""

from __future__ import annotations

import logging
import threading

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
