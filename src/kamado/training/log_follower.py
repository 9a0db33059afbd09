"""Follow a running task's log: store complete lines, and the metrics parsed from them, exactly once.

The byte offset reached is stored with each chunk in the same transaction as the chunk and its metrics,
so a restarted server resumes where the last one stopped: no line is stored twice or lost.
"""

from __future__ import annotations

from collections.abc import Callable

from kamado.compute.executor import Executor
from kamado.compute.taskspec import TaskHandle
from kamado.core.clock import Clock
from kamado.core.errors import NotFound
from kamado.store.base import MetadataStore
from kamado.store.records import MetricPoint
from kamado.training.metrics import MetricExtractor
from kamado.training.spec import CreateTrainingJobRequest

#: Longest stretch of a log kept in the metadata store per job; beyond it the stored log is truncated with
#: a marker (the complete log is archived to the artifact store when the attempt ends). The count restarts
#: with the server.
MAX_STORED_LOG_BYTES = 64 << 20
#: A line longer than this without a newline is stored as it is.
MAX_PARTIAL_LINE = 65536


class LogFollower:
    """Per-job follow state for one reconciler. Not thread-safe: one reconciler thread calls it."""

    def __init__(self, store: MetadataStore, executor: Executor, clock: Clock, kind: str) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.kind = kind
        #: (name, attempt) -> (offset, partial line); a processing job follows one log per instance (attempt).
        self._state: dict[tuple[str, int], tuple[int, bytes]] = {}
        self._stored: dict[str, int] = {}
        self._extractors: dict[str, MetricExtractor] = {}
        #: (job name, text) -> text with the job's secret values masked, applied before anything is stored.
        self.redact: Callable[[str, str], str] | None = None

    def forget(self, name: str) -> None:
        for key in [k for k in self._state if k[0] == name]:
            self._state.pop(key, None)
        self._stored.pop(name, None)
        self._extractors.pop(name, None)

    def pull(
        self,
        name: str,
        attempt: int,
        handle: TaskHandle,
        req: CreateTrainingJobRequest | None,
        *,
        final: bool = False,
    ) -> bool:
        """Store the new complete lines of the attempt's log; with ``final`` also a last partial line.
        Returns True when metric points were stored (a tuning job may want to act on them at once).
        ``req`` supplies MetricDefinitions; without one only ``kamado.log_metric`` lines are metrics."""
        state = self._state.get((name, attempt))
        if state is None:
            state = (self.store.log_offset(self.kind, name, attempt), b"")
        offset, partial = state
        extractor = self._extractors.get(name)
        if extractor is None:
            definitions = req.AlgorithmSpecification.MetricDefinitions if req is not None else []
            extractor = MetricExtractor([(m.Name, m.Regex) for m in definitions])
            self._extractors[name] = extractor
        stored_metrics = False
        for _ in range(64):  # bounded per tick, so one chatty job cannot starve the others
            try:
                data, new_offset = self.executor.read_logs(handle, offset)
            except NotFound:
                return stored_metrics  # the task never started or its files are gone: nothing (more) to read
            if not data and not (final and partial):
                break
            buf = partial + data
            cut = buf.rfind(b"\n") + 1
            if (final and not data) or (cut == 0 and len(buf) > MAX_PARTIAL_LINE):
                cut = len(buf)
            complete, partial = buf[:cut], buf[cut:]
            consumed = new_offset - len(partial)
            offset = new_offset
            if complete:
                stored_metrics |= self._store_chunk(name, attempt, complete, consumed, extractor)
            if not data:
                break
        self._state[(name, attempt)] = (offset, partial)
        return stored_metrics

    def _store_chunk(self, name: str, attempt: int, complete: bytes, consumed: int, extractor: MetricExtractor) -> bool:
        now = self.clock.now()
        text = complete.decode("utf-8", errors="replace")
        if self.redact is not None:
            text = self.redact(name, text)
        points: list[MetricPoint] = []
        for line in text.splitlines():
            points.extend(extractor.extract(line, now))
        stored = self._stored.get(name, 0)
        if stored < MAX_STORED_LOG_BYTES:
            if stored + len(complete) > MAX_STORED_LOG_BYTES:
                text = text[: MAX_STORED_LOG_BYTES - stored] + "\n[kamado: log truncated in the store]\n"
            self._stored[name] = stored + len(complete)
            chunks = [(now, text)]
        else:
            chunks = [(now, "")] if points else []
        self.store.append_logs(self.kind, name, attempt, chunks, end_offset=consumed, metrics=points)
        return bool(points)
