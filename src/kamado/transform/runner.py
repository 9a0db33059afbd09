"""One transform job, run start to end in a worker thread of the reconciler.

Start ``InstanceCount`` model servers (executor tasks, as endpoint instances are), wait for ``/ping``, then
hand the input objects out to the instances one at a time; each instance sends up to its concurrency of
requests, and each object's answers are assembled in input order into ``<object>.out``, written only if
every record of the object succeeded (as SageMaker does). A finished object is recorded in a journal under
``KAMADO_HOME``, so a server restarted mid-job resumes with the objects not finished yet. A failed record
does not stop the job: the job fails at the end, saying how many records failed and where the first did.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kamado.artifacts.base import ArtifactStore
from kamado.hosting.instances import InstanceOps, last_line
from kamado.store.base import MetadataStore
from kamado.store.records import ResourceRecord
from kamado.transform.records import Batch, DataProcessor, assemble, split_records
from kamado.transform.service import KIND, zero_progress
from kamado.transform.spec import CreateTransformJobRequest
from kamado.transform.states import TransformJobStatus, sources

log = logging.getLogger("kamado.transform")

STARTUP_TIMEOUT_S = 300.0
PROGRESS_EVERY_S = 0.5
MAX_FAILURES_KEPT = 10


class JobFailure(Exception):
    """The job cannot go on; the message is its FailureReason."""


@dataclass(frozen=True)
class Plan:
    """How records go to the model: the request's values, else the container's execution parameters."""

    multi: bool
    max_bytes: int
    concurrency: int
    timeout_s: float
    retries: int


class Journal:
    """Objects already finished by this job (one JSON line each, fsynced), for resuming after a restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "done.jsonl"
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        done: dict[str, dict[str, Any]] = {}
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by a crash: that object is simply done again
                continue
            done[entry["Key"]] = entry
        return done

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class JobRun:
    def __init__(
        self,
        rec: ResourceRecord,
        store: MetadataStore,
        artifacts: ArtifactStore,
        ops: InstanceOps,
        journal: Journal,
    ) -> None:
        self.name = rec.name
        self.rec = rec
        self.req = CreateTransformJobRequest.model_validate(rec.spec)
        self.store = store
        self.artifacts = artifacts
        self.ops = ops
        self.journal = journal
        #: Set when the job is to stop (it ends Stopped); ``shutdown`` when the server closes (it resumes later).
        self.stop = threading.Event()
        self.shutdown = threading.Event()
        self.processor = DataProcessor(
            self.req.DataProcessing, self.req.TransformInput.ContentType, self.req.TransformOutput.Accept
        )
        self._lock = threading.Lock()
        self._progress = dict(zero_progress())
        self._failures: list[dict[str, Any]] = []
        self._last_saved = 0.0
        self.instances: list[dict[str, Any]] = []

    # -- the whole job --------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.rec = self.store.get(KIND, self.name)  # the pass's copy may predate the last worker's end
            if TransformJobStatus(self.rec.state).is_terminal():
                return
            if self.rec.state == TransformJobStatus.STOPPING:
                self._stop_instances(self.rec.status.get("Instances") or [])
                self._end(TransformJobStatus.STOPPED)
                return
            self._run()
        except JobFailure as exc:
            self._end(TransformJobStatus.FAILED, str(exc))
        except Exception as exc:
            log.exception("transform job %s failed", self.name)
            self._end(TransformJobStatus.FAILED, f"kamado could not run the job: {type(exc).__name__}: {exc}")
        finally:
            self._stop_instances(self.instances)

    def _halted(self) -> bool:
        return self.stop.is_set() or self.shutdown.is_set()

    def _run(self) -> None:
        files = self._input_files()
        done = self.journal.load()
        for entry in done.values():
            self._count_object(entry)
        self._progress["FilesTotal"] = len(files)
        self._start_instances()
        if not self._wait_ready():
            self._finish_halted()
            return
        plan = self._plan()
        todo: queue.Queue[tuple[str, str]] = queue.Queue()
        for key, rel in files:
            if key not in done:
                todo.put((key, rel))
        threads = [
            threading.Thread(target=self._feed, args=(inst, todo, plan), name=f"transform-{self.name}-{i}", daemon=True)
            for i, inst in enumerate(self.instances)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._halted():
            self._finish_halted()
        elif self._progress["RecordsFailed"]:
            self._end(TransformJobStatus.FAILED, self._failure_reason())
        else:
            self._end(TransformJobStatus.COMPLETED)

    def _finish_halted(self) -> None:
        if self.stop.is_set():
            self._end(TransformJobStatus.STOPPED)
        # On shutdown the job stays InProgress: the next server resumes it from the journal.

    # -- inputs -----------------------------------------------------------------------------------------------
    def _input_files(self) -> list[tuple[str, str]]:
        """(key, path relative to the input prefix) of every input object, sorted."""
        uri = self.req.TransformInput.DataSource.S3DataSource.S3Uri
        key = self.artifacts.key_from_uri(uri).rstrip("/")
        if key and self.artifacts.exists(key):
            return [(key, key.rsplit("/", 1)[-1])]
        base = key + "/" if key else ""
        files = [(k, k[len(base) :]) for k in self.artifacts.list(key)]
        if not files:
            raise JobFailure(f"There is no object under TransformInput S3Uri {uri!r}; nothing to transform.")
        return files

    def _output_key(self, rel: str) -> str:
        prefix = self.artifacts.key_from_uri(self.req.TransformOutput.S3OutputPath).rstrip("/")
        return f"{prefix}/{rel}.out" if prefix else f"{rel}.out"

    # -- instances -------------------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = {"SAGEMAKER_BATCH": "true", **self.req.Environment}
        if self.req.MaxPayloadInMB is not None:
            env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(self.req.MaxPayloadInMB)
        if self.req.BatchStrategy is not None:
            multi = self.req.BatchStrategy == "MultiRecord"
            env["SAGEMAKER_BATCH_STRATEGY"] = "MULTI_RECORD" if multi else "SINGLE_RECORD"
        if self.req.MaxConcurrentTransforms:
            env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(self.req.MaxConcurrentTransforms)
        return env

    def _start_instances(self) -> None:
        status = self.rec.status
        self._stop_instances(status.get("Instances") or [])  # a previous server's attempt
        attempt = int(status.get("Attempt") or 0) + 1
        container = dict(status["Container"])
        container["Environment"] = {**container.get("Environment", {}), **self._environment()}
        variant = {
            "Container": container,
            "VariantName": "transform",
            "InstanceType": self.req.TransformResources.InstanceType,
        }
        # Recorded before they start, so whoever comes next can stop them.
        patch: dict[str, Any] = {"Attempt": attempt, "Progress": dict(self._progress)}
        patch["TransformStartTime"] = status.get("TransformStartTime") or time.time()
        self.store.update_status(KIND, self.name, patch)
        for i in range(self.req.TransformResources.InstanceCount):
            task_id = f"transform-job/{self.name}/{attempt}/{i}"
            self.instances.append(
                self.ops.start(
                    f"transform-{self.name}", str(attempt), variant, f"i-{i}", task_id=task_id, project=self.rec.project
                )
            )
            self.store.update_status(KIND, self.name, {"Instances": self.instances})

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        pending = list(self.instances)
        while pending:
            if self._halted():
                return False
            for inst in list(pending):
                if self.ops.ping(inst):
                    pending.remove(inst)
                elif self.ops.poll(inst).state.is_terminal():
                    why = last_line(self.ops.log_tail(inst)) or "no output"
                    raise JobFailure(f"The model server exited before it was ready: {why}")
            if pending and time.monotonic() > deadline:
                raise JobFailure(f"The model server did not answer /ping within {STARTUP_TIMEOUT_S:.0f} s.")
            if pending:
                time.sleep(0.05)
        return True

    def _stop_instances(self, instances: list[dict[str, Any]]) -> None:
        for inst in instances:
            try:
                self.ops.stop(inst)
            except Exception:
                log.warning("stopping transform instance %s failed", inst.get("TaskId"), exc_info=True)

    def _plan(self) -> Plan:
        """Request values first, then the container's ``GET /execution-parameters``, then defaults."""
        params: dict[str, Any] = {}
        if not (self.req.MaxConcurrentTransforms and self.req.BatchStrategy and self.req.MaxPayloadInMB):
            try:
                r = httpx.get(self.instances[0]["Url"] + "/execution-parameters", timeout=2.0, trust_env=False)
                if r.status_code == 200 and isinstance(r.json(), dict):
                    params = r.json()
            except (httpx.HTTPError, ValueError):
                params = {}
        strategy = self.req.BatchStrategy or {"MULTI_RECORD": "MultiRecord"}.get(str(params.get("BatchStrategy")))
        payload_mb = self.req.MaxPayloadInMB or _positive(params.get("MaxPayloadInMB")) or 6
        client = self.req.ModelClientConfig
        return Plan(
            multi=strategy == "MultiRecord" and self.req.TransformInput.SplitType == "Line",
            max_bytes=payload_mb * 1024 * 1024,
            concurrency=self.req.MaxConcurrentTransforms or _positive(params.get("MaxConcurrentTransforms")) or 1,
            timeout_s=float(client.InvocationsTimeoutInSeconds if client else 600),
            retries=client.InvocationsMaxRetries if client else 3,
        )

    # -- feeding -----------------------------------------------------------------------------------------------
    def _feed(self, inst: dict[str, Any], todo: queue.Queue[tuple[str, str]], plan: Plan) -> None:
        limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
        with (
            httpx.Client(base_url=inst["Url"], timeout=plan.timeout_s, limits=limits, trust_env=False) as http,
            ThreadPoolExecutor(plan.concurrency, thread_name_prefix=f"transform-{self.name}") as pool,
        ):
            while not self._halted():
                try:
                    key, rel = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    self._object(key, rel, http, pool, plan)
                except Exception as exc:  # reading or writing the object failed: all its records count as failed
                    log.exception("transform job %s: object %s failed", self.name, key)
                    self._fail_object(key, f"{type(exc).__name__}: {exc}")

    def _object(self, key: str, rel: str, http: httpx.Client, pool: ThreadPoolExecutor, plan: Plan) -> None:
        records = split_records(self.artifacts.get_bytes(key), self.req.TransformInput.SplitType)
        pieces: list[bytes] = []
        failed = 0
        first_error: dict[str, str] | None = None
        window: deque[tuple[Batch, Future[tuple[bytes | None, str | None]]]] = deque()
        batches = iter(self.processor.batches(records, multi=plan.multi, max_bytes=plan.max_bytes))
        exhausted = False
        while True:
            while not exhausted and len(window) < 2 * plan.concurrency and not self._halted():
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                else:
                    window.append((batch, pool.submit(self._send, http, batch, plan)))
            if not window:
                break
            batch, future = window.popleft()
            piece, error = future.result()
            if error is None and piece is not None:
                pieces.append(piece)
                self._count(RecordsCompleted=batch.count)
            else:
                failed += batch.count
                failure = self._record_failure(key, batch, error or "no answer")
                first_error = first_error or failure
        if self._halted() and not exhausted:
            return  # not finished: done again after a restart; a stopped job leaves it unwritten
        if not failed:
            self.artifacts.put_bytes(self._output_key(rel), assemble(pieces, self.req.TransformOutput.AssembleWith))
        entry = {"Key": key, "Records": len(records), "Failed": failed, "FirstError": first_error}
        self.journal.add(entry)
        self._count(FilesCompleted=1, FilesFailed=1 if failed else 0)

    def _send(self, http: httpx.Client, batch: Batch, plan: Plan) -> tuple[bytes | None, str | None]:
        if batch.error is not None:
            return None, batch.error
        headers = {}
        if self.req.TransformInput.ContentType:
            headers["Content-Type"] = self.req.TransformInput.ContentType
        if self.req.TransformOutput.Accept:
            headers["Accept"] = self.req.TransformOutput.Accept
        problem = "no attempt"
        for attempt in range(plan.retries + 1):
            if attempt:
                time.sleep(min(2.0, 0.2 * 2**attempt))
            try:
                r = http.post("/invocations", content=batch.body, headers=headers)
            except httpx.TimeoutException:
                return None, f"the model did not answer within {plan.timeout_s:.0f} s"
            except httpx.TransportError as exc:  # never reached the model: safe to retry
                problem = f"could not reach the model server ({type(exc).__name__}: {exc})"
                continue
            if not 200 <= r.status_code < 300:
                return None, f"the model answered {r.status_code}: {r.text.strip()[:300]}"
            try:
                return self.processor.finish(batch, r.content, multi=plan.multi), None
            except (ValueError, TypeError) as exc:
                return None, f"DataProcessing: {exc}"
        return None, problem

    # -- progress and outcome -------------------------------------------------------------------------------------
    def _count_object(self, entry: dict[str, Any]) -> None:
        failed = int(entry.get("Failed", 0))
        self._progress["FilesCompleted"] += 1
        self._progress["FilesFailed"] += 1 if failed else 0
        self._progress["RecordsCompleted"] += int(entry.get("Records", 0)) - failed
        self._progress["RecordsFailed"] += failed
        if failed and entry.get("FirstError"):
            self._failures.append(entry["FirstError"])

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                self._progress[k] += v
            now = time.monotonic()
            if now - self._last_saved < PROGRESS_EVERY_S:
                return
            self._last_saved = now
            patch = {"Progress": dict(self._progress), "FailedRecords": list(self._failures)}
        self.store.update_status(KIND, self.name, patch)

    def _record_failure(self, key: str, batch: Batch, error: str) -> dict[str, str]:
        failure = {"File": self.artifacts.uri(key), "Lines": batch.lines(), "Error": error}
        with self._lock:
            if len(self._failures) < MAX_FAILURES_KEPT:
                self._failures.append(failure)
        self._count(RecordsFailed=batch.count)
        return failure

    def _fail_object(self, key: str, error: str) -> None:
        with self._lock:
            if len(self._failures) < MAX_FAILURES_KEPT:
                self._failures.append({"File": self.artifacts.uri(key), "Lines": "all", "Error": error})
        self._count(FilesCompleted=1, FilesFailed=1, RecordsFailed=1)

    def _failure_reason(self) -> str:
        p = self._progress
        total = p["RecordsCompleted"] + p["RecordsFailed"]
        reason = (
            f"{p['RecordsFailed']} of {total} records failed, in {p['FilesFailed']} of {p['FilesTotal']} input "
            "objects (their .out files were not written; the other objects' were)."
        )
        if self._failures:
            first = self._failures[0]
            reason += f" First: {first['File']} {first['Lines']}: {first['Error']}"
        return reason[:1024]

    def _end(self, state: TransformJobStatus, reason: str | None = None) -> None:
        self._stop_instances(self.instances)
        patch: dict[str, Any] = {
            "TransformEndTime": time.time(),
            "Progress": dict(self._progress),
            "FailedRecords": list(self._failures),
        }
        if reason:
            patch["FailureReason"] = reason
        try:
            self.store.transition(KIND, self.name, from_states=sources(state), to_state=str(state), status_patch=patch)
        finally:
            self.journal.remove()


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
