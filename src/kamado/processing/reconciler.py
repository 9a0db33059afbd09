"""The processing reconciler: runs each stored processing job as one executor task per instance.

Same discipline as the training reconciler, whose parts it reuses (log following, failure reasons, the
capacity ledger, the step pool): every instance's task is recorded as an attempt (attempt ``i`` is host
``algo-i``) together with its task spec *before* anything is submitted, and the job is marked running in
the same transaction as the last record. Submit is idempotent by task id, so a server that dies anywhere
re-attaches to the tasks that run, submits the ones that never did, and never starts one twice.

A job Completes only when every instance exits 0; the first instance that fails stops the others and
fails the job with its host and reason; MaxRuntimeInSeconds stops it, as SageMaker does.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.capacity import CapacityLedger
from kamado.compute.executor import Executor
from kamado.compute.instance_types import reservation_for, resolve_instance_type
from kamado.compute.taskspec import Limits, Resources, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.clock import Clock, SystemClock
from kamado.core.errors import ConcurrentModification, NotFound, ResourceInUse
from kamado.core.lifecycle import sources_for
from kamado.core.loop import ReconcileLoop, StepPool
from kamado.core.secret_hooks import ResourceSecrets, SecretResolutionError
from kamado.core.settings import Settings
from kamado.processing import instances
from kamado.processing.instances import InstanceLayout
from kamado.processing.service import KIND, ProcessingJobStatus
from kamado.processing.spec import CreateProcessingJobRequest
from kamado.store.base import MetadataStore
from kamado.store.records import ResourceRecord
from kamado.training.contract import OPT_ML
from kamado.training.failure import failure_reason
from kamado.training.inputs import PrepareError
from kamado.training.log_follower import LogFollower
from kamado.training.reconciler import MAX_PREPARE_FAILURES, PENDING_SPEC

log = logging.getLogger("kamado.processing")
ACTIVE_STATES = [str(ProcessingJobStatus.IN_PROGRESS), str(ProcessingJobStatus.STOPPING)]
_FAILED = (TaskState.FAILED, TaskState.LOST)


class ProcessingReconciler(ReconcileLoop):
    name = "processing-reconciler"

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        executor: Executor,
        settings: Settings,
        *,
        ledger: CapacityLedger | None = None,
        clock: Clock | None = None,
        workers: int = 2,
        inline: bool = False,
    ) -> None:
        """``ledger``: share the training reconciler's, so jobs of both kinds queue for one machine."""
        self.store = store
        self.artifacts = artifacts
        self.executor = executor
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ledger = ledger or CapacityLedger(executor.capacity())
        self.jobs_root = settings.home / "processing-jobs"
        self._steps = StepPool(workers, "kamado-processing", inline=inline)
        self._handles: dict[tuple[str, int], TaskHandle] = {}
        self._cancelled: set[str] = set()
        self._prepare_failures: dict[str, int] = {}
        self.logs = LogFollower(store, executor, self.clock, KIND)
        #: Secret injection and redaction; the API layer plugs the hooks in (none: values pass as written).
        self.secrets = ResourceSecrets(self._declared_environment, lambda name: self.store.get(KIND, name).project)
        self.logs.redact = self.secrets.redact
        super().__init__(settings.reconcile_interval_s)
        executor.on_task_end(lambda _task_id: self.wake())

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._steps.shutdown()

    def idle(self) -> bool:
        return not self.store.list_in_states(KIND, ACTIVE_STATES)

    def tick(self) -> None:
        jobs = self.store.list_in_states(KIND, ACTIVE_STATES)
        jobs.sort(key=lambda r: (not r.status.get("AttemptActive"), r.created_at))
        for job in jobs:
            if self._steps.busy(job.name):
                continue
            try:
                self._step(job)
            except NotFound:
                continue
            except Exception:
                log.exception("reconciling processing job %s failed", job.name)

    # -- one step -------------------------------------------------------------------------------------
    def _step(self, job: ResourceRecord) -> None:
        st = job.status
        if st.get("AttemptActive"):
            self._watch(job)
        elif st.get("Phase") == "Uploading" and st.get("Instances"):
            self._steps.spawn(job.name, self._finish, job.name)  # resumed after a restart mid-upload
        elif st.get("StopRequested") or job.state == str(ProcessingJobStatus.STOPPING):
            self._release(job.name)
            self._terminal(job.name, ProcessingJobStatus.STOPPED, reason=None)
        elif self.ledger.try_reserve(self._holder(job.name), self._reservation(job)):
            self._steps.spawn(job.name, self._prepare_and_launch, job.name)
        elif st.get("Phase") != "Pending":
            self.store.update_status(KIND, job.name, {"Phase": "Pending"})

    def _holder(self, name: str) -> str:
        return f"{KIND}/{name}"

    def _release(self, name: str) -> None:
        self.ledger.release(self._holder(name))

    def _reservation(self, job: ResourceRecord) -> Resources:
        """All instances at once: an instance's reservation times InstanceCount."""
        cluster = CreateProcessingJobRequest.model_validate(job.spec).ProcessingResources.ClusterConfig
        one = reservation_for(resolve_instance_type(cluster.InstanceType), self.executor.capacity())
        n = cluster.InstanceCount
        return Resources(
            cpus=one.cpus * n, memory_mb=None if one.memory_mb is None else one.memory_mb * n, gpus=one.gpus * n
        )

    def _layouts(self, name: str, count: int) -> list[InstanceLayout]:
        return [InstanceLayout(self.jobs_root / name / instances.host_name(i), i) for i in range(1, count + 1)]

    # -- starting -------------------------------------------------------------------------------------
    def _prepare_and_launch(self, name: str) -> None:
        try:
            self._prepare_and_launch_once(name)
        except Exception as exc:
            failures = self._prepare_failures.get(name, 0) + 1
            self._prepare_failures[name] = failures
            log.exception("processing job %s: preparing failed (%d of %d)", name, failures, MAX_PREPARE_FAILURES)
            if failures >= MAX_PREPARE_FAILURES:
                self._release(name)
                self._prepare_failures.pop(name, None)
                self._terminal(
                    name, ProcessingJobStatus.FAILED, reason=f"InternalServerError: could not prepare the job: {exc}"
                )

    def _prepare_and_launch_once(self, name: str) -> None:
        job = self.store.get(KIND, name)
        if job.status.get("AttemptActive") or ProcessingJobStatus(job.state).is_terminal():
            return
        req = CreateProcessingJobRequest.model_validate(job.spec)
        self.store.update_status(KIND, name, {"Phase": "Downloading"})
        layouts = self._layouts(name, req.instance_count())
        try:
            shutil.rmtree(self.jobs_root / name, ignore_errors=True)  # a restart mid-preparation starts over
            lineage: dict[str, Any] = {}
            specs = []
            for layout in layouts:
                lineage = instances.prepare_instance(self.artifacts, req, layout, job_arn=job.arn)
                specs.append(self._task_spec(job, req, layout))
        except PrepareError as exc:
            self._release(name)
            self._terminal(name, ProcessingJobStatus.FAILED, reason=f"ClientError: {exc}")
            return
        try:
            self.secrets.inject(name, req.Environment)  # a secret deleted since create fails the job here
        except SecretResolutionError as exc:
            self._release(name)
            self._terminal(name, ProcessingJobStatus.FAILED, reason=f"ClientError: {exc.message}")
            return
        job = self.store.get(KIND, name)
        if job.status.get("StopRequested") or ProcessingJobStatus(job.state).is_terminal():
            self._release(name)
            self._terminal(name, ProcessingJobStatus.STOPPED, reason=None)
            return
        if not self._record_instances(name, specs, lineage):
            return
        for i, spec in enumerate(specs, start=1):
            handle = self.executor.submit(self._with_secrets(name, spec))
            self.store.update_attempt_handle(KIND, name, i, self._handle_data(handle, spec))
            self._handles[(name, i)] = handle

    def _declared_environment(self, name: str) -> dict[str, str]:
        return CreateProcessingJobRequest.model_validate(self.store.get(KIND, name).spec).Environment

    def _with_secrets(self, name: str, spec: TaskSpec) -> TaskSpec:
        """The spec the executor gets: references resolved. The recorded spec keeps the references only."""
        if self.secrets.hooks is None:
            return spec
        return replace(spec, env=self.secrets.inject(name, spec.env))

    def _handle_data(self, handle: TaskHandle, spec: TaskSpec) -> dict[str, Any]:
        return {**handle.data, "task_id": spec.task_id, "executor": self.executor.name}

    def _record_instances(self, name: str, specs: list[TaskSpec], lineage: dict[str, Any]) -> bool:
        """Record every instance's attempt with its spec; the last record marks the job running in the same
        transaction. Nothing is submitted before that, so records left by a crash before it are stale and
        overwritten here; after it, the watch path submits (idempotently) or re-attaches each task."""
        for i, spec in enumerate(specs[:-1], start=1):
            handle = {"task_id": spec.task_id, "executor": self.executor.name, PENDING_SPEC: spec.to_json()}
            try:
                self.store.start_attempt(KIND, name, i, handle=handle, started_at=self.clock.now())
            except ResourceInUse:
                self.store.update_attempt_handle(KIND, name, i, handle)
        last = specs[-1]
        for _ in range(10):
            job = self.store.get(KIND, name)
            now = self.clock.now()
            patch: dict[str, Any] = {
                "AttemptActive": True,
                "Phase": "Running",
                "JobDir": str(self.jobs_root / name),
                "PrivateOptMl": bool(last.mounts),
                "Lineage": {"InputDataHashes": lineage, "PythonVersion": ".".join(map(str, sys.version_info[:3]))},
                "ProcessingStartTime": job.status.get("ProcessingStartTime") or now,
            }
            try:
                self.store.start_attempt(
                    KIND,
                    name,
                    len(specs),
                    handle={"task_id": last.task_id, "executor": self.executor.name, PENDING_SPEC: last.to_json()},
                    started_at=now,
                    status_patch=patch,
                    expected_version=job.version,
                )
                return True
            except ConcurrentModification:
                continue  # a stop request landed meanwhile: recompute from fresh state
            except ResourceInUse:
                return False  # another controller owns this job's instances
        raise ConcurrentModification(f"Processing job '{name}' kept changing while its instances were recorded.")

    def _task_spec(self, job: ResourceRecord, req: CreateProcessingJobRequest, layout: InstanceLayout) -> TaskSpec:
        itype = resolve_instance_type(req.ProcessingResources.ClusterConfig.InstanceType)
        reservation = reservation_for(itype, self.executor.capacity())
        policy = self.settings.opt_ml_namespace
        in_namespace = policy != "off" and self.executor.capabilities.mount_namespaces
        if policy == "require" and not in_namespace:
            raise PrepareError(
                "a private /opt/ml needs mount namespaces, which this kernel or user refuses; run the server as "
                "root or enable unprivileged user namespaces, or set KAMADO_OPT_ML_NAMESPACE=auto"
            )
        env = instances.instance_environment(
            req,
            layout,
            job_arn=job.arn,
            in_namespace=in_namespace,
            num_cpus=max(1, int(reservation.cpus)),
            python_bin_dir=str(Path(sys.executable).parent),
        )
        return TaskSpec(
            task_id=f"{KIND}/{job.name}/{layout.host}",
            command=instances.instance_command(req, layout, in_namespace=in_namespace),
            env=env,
            workdir=str(layout.home),
            resources=reservation,
            limits=Limits(
                max_runtime_s=float(req.StoppingCondition.MaxRuntimeInSeconds),
                memory_mb=itype.memory_mb,
                max_processes=self.settings.max_processes,
                stop_grace_s=self.settings.stop_grace_s,
            ),
            mounts={OPT_ML: str(layout.root)} if in_namespace else {},
            mount_policy="require" if in_namespace else "auto",
            network="none" if req.network_isolation() else "host",
            # Every instance or none: an executor that can (Ray) reserves the whole job before any starts.
            gang=f"{KIND}/{job.name}" if req.instance_count() > 1 else None,
            gang_size=req.instance_count(),
            writable=[str(layout.root), str(layout.home)],  # this instance's /opt/ml and HOME
        )

    # -- running --------------------------------------------------------------------------------------
    def _handles_for(self, job: ResourceRecord, count: int) -> dict[int, TaskHandle | None]:
        out: dict[int, TaskHandle | None] = {i: self._handles.get((job.name, i)) for i in range(1, count + 1)}
        if all(h is not None for h in out.values()):
            return out
        records = {a.attempt: a for a in self.store.list_attempts(KIND, job.name)}
        for i, handle in out.items():
            if handle is not None or i not in records:
                continue
            data = dict(records[i].handle)
            pending = data.pop(PENDING_SPEC, None)
            if isinstance(pending, dict):
                # Recorded, but the server stopped before the executor confirmed it: submit is idempotent.
                spec = TaskSpec.from_json(pending)
                handle = self.executor.submit(self._with_secrets(job.name, spec))
                self.store.update_attempt_handle(KIND, job.name, i, self._handle_data(handle, spec))
            else:
                handle = self.executor.attach(str(data.get("task_id")), data)
            self._handles[(job.name, i)] = out[i] = handle
        return out

    def _watch(self, job: ResourceRecord) -> None:
        name = job.name
        req = CreateProcessingJobRequest.model_validate(job.spec)
        count = req.instance_count()
        self.ledger.try_reserve(self._holder(name), self._reservation(job))  # re-reserve after a restart
        handles = self._handles_for(job, count)
        statuses: dict[int, TaskStatus] = {}
        for i, handle in handles.items():
            if handle is None:
                statuses[i] = TaskStatus(state=TaskState.LOST, reason="the instance's task record is missing")
                continue
            statuses[i] = self.executor.poll(handle)
            self.logs.pull(name, i, handle, None)
        running = [i for i, s in statuses.items() if not s.state.is_terminal()]
        stop = job.status.get("StopRequested") or job.state == str(ProcessingJobStatus.STOPPING)
        failed = any(s.state in _FAILED for s in statuses.values())
        if running:
            if (stop or failed) and name not in self._cancelled:
                self._cancelled.add(name)  # a stop, or one instance failed: the others have nothing to finish
                for i in running:
                    self.executor.cancel(handles[i], self.settings.stop_grace_s)  # type: ignore[arg-type]
            else:
                self._enforce_runtime_backstop(job, req, handles)
            return
        outcomes = []
        for i, status in sorted(statuses.items()):
            handle = handles[i]
            if handle is not None:
                self.logs.pull(name, i, handle, None, final=True)
            with contextlib.suppress(NotFound):
                self.store.end_attempt(
                    KIND,
                    name,
                    i,
                    state=str(status.state),
                    ended_at=status.ended_at or self.clock.now(),
                    exit_code=status.exit_code,
                    reason=status.reason,
                )
            outcomes.append(
                {
                    "Host": instances.host_name(i),
                    "state": str(status.state),
                    "exit_code": status.exit_code,
                    "signal": status.signal,
                    "reason": status.reason,
                    "oom": status.oom,
                    "cpu_seconds": status.cpu_seconds,
                    "peak_memory_mb": status.peak_memory_mb,
                }
            )
        self._cancelled.discard(name)
        self._release(name)
        self.store.update_status(KIND, name, {"AttemptActive": False, "Phase": "Uploading", "Instances": outcomes})
        self._steps.spawn(name, self._finish, name)

    def _enforce_runtime_backstop(
        self, job: ResourceRecord, req: CreateProcessingJobRequest, handles: dict[int, TaskHandle | None]
    ) -> None:
        """The executor enforces MaxRuntime itself; this catches an executor that failed to."""
        start = job.status.get("ProcessingStartTime")
        deadline = float(start or 0) + req.StoppingCondition.MaxRuntimeInSeconds + self.settings.stop_grace_s + 30
        if start and job.name not in self._cancelled and self.clock.now() > deadline:
            self._cancelled.add(job.name)
            for handle in handles.values():
                if handle is not None:
                    self.executor.cancel(handle, 0)

    # -- finishing ------------------------------------------------------------------------------------
    def _finish(self, name: str) -> None:
        job = self.store.get(KIND, name)
        if ProcessingJobStatus(job.state).is_terminal():
            return
        req = CreateProcessingJobRequest.model_validate(job.spec)
        outcomes: list[dict[str, Any]] = job.status.get("Instances") or []
        layouts = self._layouts(name, req.instance_count())
        patch: dict[str, Any] = {
            "Instances": [_public_outcome(o) for o in outcomes],
            "ResourceUsage": {
                "CpuSeconds": sum(o.get("cpu_seconds") or 0 for o in outcomes),
                "PeakMemoryMB": max((o.get("peak_memory_mb") or 0 for o in outcomes), default=0),
            },
        }
        states = [TaskState(o["state"]) for o in outcomes]
        stop = job.status.get("StopRequested") or job.state == str(ProcessingJobStatus.STOPPING)
        reason: str | None = None
        try:
            message = instances.read_exit_message(layouts)
            if message:
                patch["ExitMessage"] = self.secrets.redact(name, message)
        except ValueError as exc:
            reason = f"ClientError: {exc}"
        if reason is None and states and all(s == TaskState.SUCCEEDED for s in states):
            try:
                self._upload_outputs(req, layouts)
                target = ProcessingJobStatus.COMPLETED
            except Exception as exc:
                log.exception("uploading the outputs of processing job %s failed", name)
                target, reason = ProcessingJobStatus.FAILED, f"InternalServerError: uploading outputs failed: {exc}"
        elif reason is not None:
            target = ProcessingJobStatus.FAILED
        elif stop and TaskState.LOST not in states:
            target = ProcessingJobStatus.STOPPED
        elif any(s in _FAILED for s in states):
            target = ProcessingJobStatus.FAILED
            i, outcome = next((i, o) for i, o in enumerate(outcomes) if TaskState(o["state"]) in _FAILED)
            tail = "".join(c.data for c in self.store.tail_logs(KIND, name, limit=200) if c.attempt == i + 1)
            why = failure_reason(outcome, layouts[i].message_file, tail[-20_000:])
            reason = self.secrets.redact(name, f"{outcome['Host']}: {why}")
        else:
            target = ProcessingJobStatus.STOPPED
            if TaskState.TIMED_OUT in states:
                limit = req.StoppingCondition.MaxRuntimeInSeconds
                reason = f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds={limit}"
        self._cleanup_tasks(name)
        self._terminal(name, target, reason=reason, patch=patch)
        if target == ProcessingJobStatus.COMPLETED:
            shutil.rmtree(self.jobs_root / name, ignore_errors=True)  # failed jobs keep theirs for inspection
        self.logs.forget(name)
        self.secrets.forget(name)

    def _upload_outputs(self, req: CreateProcessingJobRequest, layouts: list[InstanceLayout]) -> None:
        """Every instance's files under each output's LocalPath, to the output's S3Uri (symlinks are not
        followed, as in SageMaker). Instances writing the same relative path: the highest host wins."""
        for out in req.outputs():
            prefix = self.artifacts.key_from_uri(out.S3Output.S3Uri).rstrip("/")
            for layout in layouts:
                directory = layout.host_path(out.S3Output.LocalPath)
                for path in sorted(directory.rglob("*")):
                    if path.is_file() and not path.is_symlink():
                        self.artifacts.put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)

    def _cleanup_tasks(self, name: str) -> None:
        for attempt in self.store.list_attempts(KIND, name):
            self._handles.pop((name, attempt.attempt), None)
            try:
                self.executor.cleanup(self.executor.attach(str(attempt.handle.get("task_id")), dict(attempt.handle)))
            except Exception:
                log.exception("cleaning up instance %d of processing job %s failed", attempt.attempt, name)

    def _terminal(
        self, name: str, state: ProcessingJobStatus, *, reason: str | None, patch: dict[str, Any] | None = None
    ) -> None:
        job = self.store.get(KIND, name)
        if ProcessingJobStatus(job.state).is_terminal():
            return
        full = {**(patch or {}), "AttemptActive": False, "Phase": str(state)}
        if reason:
            full["FailureReason"] = reason[:1024]
        if job.status.get("ProcessingStartTime"):
            full["ProcessingEndTime"] = self.clock.now()
        self.store.transition(KIND, name, from_states=sources_for(state), to_state=str(state), status_patch=full)
        log.info("processing job %s is %s%s", name, state, f": {reason}" if reason else "")


def _public_outcome(o: dict[str, Any]) -> dict[str, Any]:
    out = {"Host": o.get("Host"), "Status": o.get("state"), "ExitCode": o.get("exit_code"), "Reason": o.get("reason")}
    return {k: v for k, v in out.items() if v is not None}
