"""Warm worker pools: reused workers per function, each an executor task, dispatched to from the control plane.

User code only runs in the workers (``worker.py``, started by the executor: see :mod:`worker_task`). A caller
borrows one worker for a dispatch (one or more calls), so a worker never serves two callers at once; at most
``max_workers`` run per function. A call that passes its timeout gets its worker cancelled and replaced; a
worker that dies (out of memory, a crash) fails the call it was running with the reason the executor
reports, and the calls queued behind it come back as not run. Thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from kamado.compute.executor import Executor
from kamado.core.secret_hooks import redact_json
from kamado.functions.worker_task import FunctionConfig, Janitor, StartError, WorkerTask

__all__ = ["NOT_RUN", "FunctionConfig", "FunctionPool", "Pools", "StartError"]

log = logging.getLogger("kamado.functions")
#: Outcome of a call that never started because the worker ahead of it died: dispatch it again.
NOT_RUN = {"ok": False, "errorType": "Kamado.NotRun", "errorMessage": "not run", "notRun": True}
#: How long closing the pools waits for the executor to report their workers ended (then cleaned up).
CLOSE_WAIT_S = 15.0


def _init_error(exc: StartError) -> dict[str, Any]:
    return {"ok": False, "reason": "InitError", **exc.info}


def request_ids_for(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs from one ``urandom`` call: ``uuid4()`` per call was a third of the
    dispatch threads' time in a map run of no-op calls."""
    raw = os.urandom(16 * n)
    return [str(uuid.UUID(bytes=raw[i * 16 : i * 16 + 16], version=4)) for i in range(n)]


class FunctionPool:
    """Warm workers of one function."""

    def __init__(self, cfg: FunctionConfig, executor: Executor, janitor: Janitor) -> None:
        self.cfg = cfg
        self.executor = executor
        self.janitor = janitor
        self._idle: list[WorkerTask] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._busy: set[WorkerTask] = set()
        self.started = 0  # workers started over the pool's life (tests and stats)

    def _borrow(self) -> WorkerTask:
        with self._cond:
            while True:
                if self._closed:
                    raise StartError({"errorType": "Kamado.PoolClosed", "errorMessage": "the function was removed"})
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        self._busy.add(w)
                        return w
                    self._count -= 1
                    w.kill()
                if self._count < self.cfg.max_workers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            w = WorkerTask(self.cfg, self.executor, self.janitor)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.started += 1
            self._busy.add(w)
        return w

    def _give_back(self, w: WorkerTask, healthy: bool) -> None:
        if not healthy:
            w.kill()
        with self._cond:
            self._busy.discard(w)
            keep = healthy and not self._closed
            if keep:
                self._idle.append(w)
            else:
                self._count -= 1
            self._cond.notify()
        if healthy and not keep:
            w.kill()  # the pool closed while the worker was out

    def run(
        self,
        events: Sequence[Any],
        *,
        on_result: Callable[[int, dict[str, Any]], None] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Run each event as one call on one borrowed worker; one outcome per event, in order."""
        rids = list(request_ids) if request_ids is not None else request_ids_for(len(events))
        try:
            w = self._borrow()
        except StartError as exc:
            return [_init_error(exc) for _ in events]
        healthy = w.send(self._message(events, rids))
        out, healthy = self._collect(w, rids, healthy, on_result)
        self._give_back(w, healthy)
        return out

    def stream(
        self,
        feed: Callable[[bool], tuple[Any, Sequence[Any]] | None],
        settle: Callable[[Any, list[dict[str, Any]]], None],
        *,
        depth: int = 2,
    ) -> bool:
        """Run batches from ``feed`` on one borrowed worker with up to ``depth`` batches in flight, so the worker
        starts the next batch while this thread is still settling the last one (it never waits on us).

        ``feed(block)`` returns ``(tag, events)``, ``None`` when there is no more work at all, or - only when
        ``block`` is false - an empty ``(tag, [])`` when nothing is due now. ``settle(tag, outcomes)`` gets each
        batch's outcomes, in order. Returns True once ``feed`` said there is no more work; False when the
        worker failed (the calls it never ran were settled as not run), so the caller streams again.
        """
        try:
            w = self._borrow()
        except StartError as exc:
            got = feed(True)
            if got is None:
                return True
            settle(got[0], [_init_error(exc) for _ in got[1]])
            return False
        in_flight: deque[tuple[Any, list[str]]] = deque()
        healthy, finished = True, False
        while True:
            while healthy and not finished and len(in_flight) < depth:
                got = feed(not in_flight)  # block only when the worker has nothing to do
                if got is None:
                    finished = True
                elif got[1]:
                    rids = request_ids_for(len(got[1]))
                    healthy = w.send(self._message(got[1], rids))
                    in_flight.append((got[0], rids))
                if got is None or not got[1]:
                    break
            if not in_flight:
                break
            tag, rids = in_flight.popleft()
            outcomes, healthy = self._collect(w, rids, healthy, None)
            settle(tag, outcomes)
            if not healthy:
                while in_flight:
                    tag, rids = in_flight.popleft()
                    settle(tag, [dict(NOT_RUN, requestId=r) for r in rids])
                break
        self._give_back(w, healthy)
        return finished

    def _message(self, events: Sequence[Any], rids: list[str]) -> dict[str, Any]:
        return {
            "calls": list(events),
            "request_ids": rids,
            "timeout_ms": int(self.cfg.timeout_s * 1000),
            "function": self.cfg.name,
        }

    def _collect(
        self,
        w: WorkerTask,
        rids: list[str],
        healthy: bool,
        on_result: Callable[[int, dict[str, Any]], None] | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The answers to one sent message, in order; after a timeout or death the rest come back not run."""
        timeout_s = self.cfg.timeout_s
        out: list[dict[str, Any]] = []
        while healthy and len(out) < len(rids):
            # Each call has its own deadline, counted from the previous call's answer.
            answer = w.read_line(time.monotonic() + timeout_s + 0.05)
            if answer is None:
                healthy = False
                if not w.closed():
                    answer = {
                        "ok": False,
                        "errorType": "Kamado.Timeout",
                        "errorMessage": f"Task timed out after {timeout_s:g} seconds",
                        "reason": "TimedOut",
                    }
                else:
                    answer = {"ok": False, **w.death()}
                    answer.pop("exitCode", None)
            elif answer.get("reason") == "OutOfMemory" or answer.get("errorType") == "Runtime.ExitError":
                healthy = False
            if self.cfg.redact is not None:
                answer = cast(dict[str, Any], redact_json(answer, self.cfg.redact))
            answer["requestId"] = rids[len(out)]
            out.append(answer)
            if on_result is not None:
                on_result(len(out) - 1, answer)
        while len(out) < len(rids):
            out.append(dict(NOT_RUN, requestId=rids[len(out)]))
        return out, healthy

    def invoke(self, event: Any) -> dict[str, Any]:
        """One synchronous call; a call that was not run because its worker died first is retried once."""
        outcome = self.run([event])[0]
        if outcome.get("notRun"):
            outcome = self.run([event])[0]
        return outcome

    def close(self, *, stop_busy: bool = False) -> None:
        """Stop the idle workers now; busy ones are stopped when given back, or at once with ``stop_busy``
        (the server is shutting down: their calls fail as their worker died, and are not lost to a map run)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            busy = list(self._busy)
            self._cond.notify_all()
        for w in idle:
            w.kill()
        if stop_busy:
            for w in busy:  # only the executor is told: the borrower sees the connection close and retires it
                w.cancel()


class Pools:
    """Every function's pool, created on first use; all share one executor and one janitor. Thread-safe."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.janitor = Janitor()
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()

    def get(self, cfg: FunctionConfig) -> FunctionPool:
        with self._lock:
            pool = self._pools.get(cfg.name)
            if pool is not None and pool.cfg != cfg:
                pool.close()  # the function was updated: its old workers must not serve the new code
                pool = None
            if pool is None:
                pool = self._pools[cfg.name] = FunctionPool(cfg, self.executor, self.janitor)
            return pool

    def drop(self, name: str) -> None:
        with self._lock:
            pool = self._pools.pop(name, None)
        if pool is not None:
            pool.close()

    def sweep_stale(self) -> int:
        """Stop the worker tasks a previous server left running (it was killed before closing its pools)."""
        return self.janitor.sweep(self.executor)

    def close(self) -> None:
        """Close every pool and wait (bounded) until the executor has ended and cleaned up their workers."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            p.close(stop_busy=True)
        if not self.janitor.drain(CLOSE_WAIT_S):
            log.warning("some function workers had not ended %g s after they were stopped", CLOSE_WAIT_S)
