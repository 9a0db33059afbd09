"""The map-run runner: one controller thread per ``InProgress`` run, dispatch threads feeding the function's
warm pool, and one writer thread that persists finished chunks.

Calls go out in slices that shrink as the queue drains (so the tail stays balanced); a failed call is queued
again after an exponential backoff until ``MaxAttempts``; a call a dying worker never ran is queued again
without counting an attempt. A chunk is written (its result file, then "done" in the run's status) only
when every item in it is final, which is what makes a restarted server resume without losing or repeating
an item's result.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kamado.core.errors import IllegalTransition, NotFound
from kamado.core.loop import ReconcileLoop
from kamado.functions.maprun import KIND, MapRunService, items_key
from kamado.store.records import ResourceRecord

log = logging.getLogger("kamado.functions")
#: Backoff before retry n (1-based): ``RETRY_BASE_S * 2 ** (n - 1)``, capped.
RETRY_BASE_S = 0.05
RETRY_CAP_S = 5.0
#: A worker gets its next batch before it finishes the current one only while at least this many calls per
#: worker are queued: prefetching near the end would queue calls behind a straggler that another worker could
#: have run (B4's 1% stragglers).
PREFETCH_MIN_PER_WORKER = 16


class MapRunner(ReconcileLoop):
    """Runs every ``InProgress`` map run, each on its own controller thread."""

    name = "map-runs"

    def __init__(self, service: MapRunService, *, interval_s: float = 0.2) -> None:
        super().__init__(interval_s)
        self.service = service
        self._active: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def idle(self) -> bool:
        return not self.service.store.list_in_states(KIND, ["InProgress"])

    def tick(self) -> None:
        for rec in self.service.store.list_in_states(KIND, ["InProgress"]):
            with self._lock:
                t = self._active.get(rec.name)
                if t is not None and t.is_alive():
                    continue
                run = _Run(self, rec)
                t = threading.Thread(target=run.main, name=f"kamado-map-{rec.name}", daemon=True)
                self._active[rec.name] = t
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        with self._lock:
            threads = list(self._active.values())
        for t in threads:
            t.join(timeout)

    def stopping(self) -> bool:
        return self._stop.is_set()


class _Run:
    """One pass of one map run: the chunks not done yet, until every item is final or a stop."""

    def __init__(self, runner: MapRunner, rec: ResourceRecord) -> None:
        self.runner = runner
        self.svc = runner.service
        self.art = self.svc.artifacts
        self.name = rec.name
        self.spec = rec.spec
        self.status = dict(rec.status)
        self.done: dict[str, list[int]] = dict(self.status.get("Done", {}))
        self.lock = threading.Lock()
        self.calls: deque[tuple[int, tuple[int, ...], int, float]] = deque()  # chunk, indices, attempt, not before
        self.in_flight = 0
        self.items: dict[int, Any] = {}
        self.results: dict[int, dict[int, dict[str, Any]]] = {}  # chunk -> index -> outcome line
        self.pending: dict[int, int] = {}
        self.finished: queue.Queue[int | None] = queue.Queue()
        self.aborted = threading.Event()
        # The run's whole counts while it runs (done chunks included), so a reader never mixes a stale store
        # record with newer in-memory counts: the counts it shows only ever go up.
        self.live = {
            "succeeded": sum(v[0] for v in self.done.values()),
            "failed": sum(v[1] for v in self.done.values()),
            "retried": int(self.status.get("Retried", 0)),
            "running": 0,
            "finished": 0,
            "started": time.time(),
        }

    def _key(self, what: str, chunk: int) -> str:
        if what == "items":
            return f"map-runs/{self.name}/items/{chunk:05d}.jsonl"
        return f"{self.status['ResultPrefix']}/results-{chunk:05d}.jsonl"

    def _item_lines(self) -> Callable[[int], list[str]]:
        """Chunk number -> its items' JSON lines: from the one items object, or (runs created by an older
        server) from one object per chunk."""
        size = self.status["ChunkSize"]
        if self.status.get("ItemsLayout") != "single":
            return lambda c: self.art.get_bytes(self._key("items", c)).decode().splitlines()
        if len(self.done) == self.status["Chunks"]:
            return lambda c: []
        every = self.art.get_bytes(items_key(self.name)).decode().splitlines()
        return lambda c: every[c * size : (c + 1) * size]

    def _load(self) -> None:
        size, batch = self.status["ChunkSize"], int(self.spec.get("BatchSize", 1))
        item_lines = self._item_lines()
        for c in range(self.status["Chunks"]):
            if str(c) in self.done:
                continue
            lines = item_lines(c)
            kept: dict[int, dict[str, Any]] = {}
            if self.art.exists(self._key("results", c)):  # a redrive keeps what succeeded before
                for line in self.art.get_bytes(self._key("results", c)).decode().splitlines():
                    row = json.loads(line)
                    if row["Status"] == "SUCCEEDED":
                        kept[row["Index"]] = row
            todo = []
            for i, line in enumerate(lines):
                idx = c * size + i
                if idx not in kept:
                    self.items[idx] = json.loads(line)
                    todo.append(idx)
            self.results[c] = kept
            self.live["succeeded"] += len(kept)
            self.pending[c] = len(todo)
            for b in range(0, len(todo), batch):
                self.calls.append((c, tuple(todo[b : b + batch]), 1, 0.0))
            if not todo:
                self.finished.put(c)

    def main(self) -> None:
        t0 = time.perf_counter()
        try:
            self._load()
            self.svc.live[self.name] = self.live  # only once loaded: a half-loaded count would go backwards
            t_load = time.perf_counter()
            pool = self.svc.functions.pool(self.spec["FunctionName"])
            limit = int(self.spec.get("MaxConcurrency") or 0) or pool.cfg.max_workers
            workers = [
                threading.Thread(target=self._dispatch, args=(pool, min(limit, pool.cfg.max_workers)), daemon=True)
                for _ in range(min(limit, pool.cfg.max_workers))
            ]
            writer = threading.Thread(target=self._write_chunks, name=f"kamado-map-writer-{self.name}", daemon=True)
            writer.start()
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers):
                next(w for w in workers if w.is_alive()).join(0.2)
                if self.runner.stopping():
                    self.aborted.set()
                    continue
                try:
                    if self.svc.store.get(KIND, self.name).status.get("StopRequested"):
                        self.aborted.set()
                except NotFound:
                    self.aborted.set()
            t_run = time.perf_counter()
            self.finished.put(None)
            writer.join()
            t_write = time.perf_counter()
            if self.runner.stopping():
                return  # the server is shutting down: the next one carries on from the stored chunks
            self._finalise()
            log.debug(
                "map run %s: load %.3f s, dispatch %.3f s, last writes %.3f s, finalise %.3f s",
                self.name,
                t_load - t0,
                t_run - t_load,
                t_write - t_run,
                time.perf_counter() - t_write,
            )
        except NotFound as exc:
            self._fail("MapRun.FunctionNotFound", exc.message)
        except Exception as exc:
            log.exception("map run %s failed", self.name)
            self._fail("MapRun.InternalError", str(exc))
        finally:
            self.svc.live.pop(self.name, None)

    def _next(self, workers: int, block: bool = True) -> list[tuple[int, tuple[int, ...], int, float]] | None:
        """Calls to send now: fewer per dispatch as the queue drains, so the tail stays balanced. ``None`` when
        the run has nothing left (or was aborted); ``[]`` when nothing is due now and ``block`` is false."""
        with self.lock:
            while True:
                if self.aborted.is_set() or (not self.calls and self.in_flight == 0):
                    return None
                if not block and len(self.calls) < workers * PREFETCH_MIN_PER_WORKER:
                    return []  # near the tail, commit no more calls to a worker than it is running now
                now = time.time()
                want = max(1, min(64, len(self.calls) // (workers * 4)))
                out: list[tuple[int, tuple[int, ...], int, float]] = []
                for _ in range(len(self.calls)):
                    call = self.calls.popleft()
                    if call[3] <= now and len(out) < want:
                        out.append(call)
                    else:
                        self.calls.append(call)
                    if len(out) >= want:
                        break
                if out:
                    self.in_flight += len(out)
                    self.live["running"] += sum(len(c[1]) for c in out)
                    return out
                if not block:
                    return out
                # nothing due yet (retries backing off, or calls in flight elsewhere)
                self.lock.release()
                try:
                    time.sleep(0.005)
                finally:
                    self.lock.acquire()

    def _dispatch(self, pool: Any, workers: int) -> None:
        """Feed one worker at a time through the pool's stream (two batches in flight per worker), until the
        run has nothing left; a worker that fails is replaced by streaming again."""
        batch = int(self.spec.get("BatchSize", 1))

        def feed(block: bool) -> tuple[Any, list[Any]] | None:
            calls = self._next(workers, block)
            if calls is None:
                return None
            events = [self.items[c[1][0]] if batch == 1 else {"Items": [self.items[i] for i in c[1]]} for c in calls]
            return calls, events

        def settle(calls: Any, outcomes: list[dict[str, Any]]) -> None:
            for call, outcome in zip(calls, outcomes, strict=True):
                self._settle(call, outcome, batch)

        while not pool.stream(feed, settle):
            pass

    def _settle(self, call: tuple[int, tuple[int, ...], int, float], outcome: dict[str, Any], batch: int) -> None:
        chunk, idxs, attempt, _ = call
        result = outcome.get("result")
        if outcome.get("ok") and batch > 1 and not (isinstance(result, list) and len(result) == len(idxs)):
            outcome = {
                "ok": False,
                "errorType": "MapRun.BatchResultMismatch",
                "errorMessage": f"a batched handler must return a list of {len(idxs)} results, one per item",
            }
        max_attempts = int(self.spec.get("MaxAttempts", 3))
        finished = False
        with self.lock:
            self.in_flight -= 1
            self.live["running"] -= len(idxs)
            if outcome.get("notRun"):
                self.calls.appendleft((chunk, idxs, attempt, 0.0))
                return
            if not outcome.get("ok") and attempt < max_attempts:
                delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1))
                self.calls.append((chunk, idxs, attempt + 1, time.time() + delay))
                self.live["retried"] += len(idxs)
                return
            rows = self.results[chunk]
            for k, idx in enumerate(idxs):
                if outcome.get("ok"):
                    out = result if batch == 1 else result[k]  # type: ignore[index]
                    rows[idx] = {"Index": idx, "Status": "SUCCEEDED", "Attempts": attempt, "Output": out}
                    self.live["succeeded"] += 1
                else:
                    rows[idx] = {
                        "Index": idx,
                        "Status": "FAILED",
                        "Attempts": attempt,
                        "Error": outcome.get("errorType"),
                        "Cause": outcome.get("errorMessage"),
                    }
                    self.live["failed"] += 1
                self.live["finished"] += 1
            self.pending[chunk] -= len(idxs)
            finished = self.pending[chunk] == 0
        if finished:
            self.finished.put(chunk)

    def _write_chunks(self) -> None:
        """The one writer: each finished chunk's result file, then the chunks recorded as done (a batch of them
        per store write), so dispatch never waits on a disk flush. ``None`` ends it once all are written."""
        end = False
        while not end:
            chunks = [self.finished.get()]
            while not self.finished.empty():
                chunks.append(self.finished.get())
            end = None in chunks
            todo = [c for c in chunks if c is not None]
            if not todo:
                continue
            counts = {}
            for chunk in todo:
                rows = self.results[chunk]
                body = "".join(json.dumps(rows[i], separators=(",", ":")) + "\n" for i in sorted(rows))
                self.art.put_bytes(self._key("results", chunk), body.encode())
                ok = sum(1 for r in rows.values() if r["Status"] == "SUCCEEDED")
                counts[str(chunk)] = [ok, len(rows) - ok]
            with self.lock:
                for key, (ok, bad) in counts.items():
                    self.done[key] = [ok, bad]
                self.status["Retried"] = self.live["retried"]
                patch = {"Done": dict(self.done), "Retried": self.status["Retried"]}
            self.svc.store.update_status(KIND, self.name, patch)

    def _finalise(self) -> None:
        succeeded: list[int] = []
        failed: list[dict[str, Any]] = []
        files = []
        for c in range(self.status["Chunks"]):
            if str(c) not in self.done:
                continue
            files.append(self.art.uri(self._key("results", c)))
            rows = list(self.results[c].values()) if c in self.results else self._read_results(c)
            for row in rows:
                if row["Status"] == "SUCCEEDED":
                    succeeded.append(row["Index"])
                else:
                    failed.append({k: row.get(k) for k in ("Index", "Error", "Cause", "Attempts")})
        total = self.status["Total"]
        pending = total - len(succeeded) - len(failed)
        tolerated = float(self.spec.get("ToleratedFailurePercentage", 0.0))
        patch: dict[str, Any] = {"StopTime": time.time(), "Retried": self.live["retried"]}
        if self.aborted.is_set() and pending:
            state = "Aborted"
        elif total and len(failed) * 100.0 / total > tolerated:
            state = "Failed"
            patch["Error"] = "States.ExceedToleratedFailureThreshold"
            patch["Cause"] = f"{len(failed)} of {total} items failed; {tolerated:g}% were tolerated."
        else:
            state = "Succeeded"
        manifest = {
            "MapRunName": self.name,
            "Status": state,
            "Total": total,
            "Succeeded": len(succeeded),
            "Failed": len(failed),
            "Pending": pending,
            "SucceededItems": sorted(succeeded),
            "FailedItems": sorted(failed, key=lambda r: r["Index"]),
            "ResultFiles": files,
        }
        self.art.put_bytes(self.status["ResultPrefix"] + "/manifest.json", json.dumps(manifest).encode())
        try:
            self.svc.store.transition(KIND, self.name, from_states=["InProgress"], to_state=state, status_patch=patch)
        except (IllegalTransition, NotFound):
            log.info("map run %s changed while it finished", self.name)

    def _read_results(self, chunk: int) -> list[dict[str, Any]]:
        data = self.art.get_bytes(self._key("results", chunk)).decode()
        return [json.loads(line) for line in data.splitlines()]

    def _fail(self, error: str, cause: str) -> None:
        with contextlib.suppress(IllegalTransition, NotFound):
            self.svc.store.transition(
                KIND,
                self.name,
                from_states=["InProgress"],
                to_state="Failed",
                status_patch={"Error": error, "Cause": cause, "StopTime": time.time()},
            )
