"""The training reconciler: makes every stored training job's desired state true, step by idempotent step.

It owns no state that the store cannot rebuild. After a crash it re-derives each job's position from
its record and attempts: a task still running is re-attached, a task that vanished is retried within the
job's ``RetryStrategy`` or failed with ``ExecutorLost``; no job stays in progress forever and no job runs
two attempts at once (an attempt is recorded before its task is submitted, and submit is idempotent).

Slow steps (materialising inputs, building environments, packing the model) run on a small thread pool
so one large upload never stalls the loop; a job has at most one step in flight.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.capacity import CapacityLedger
from kamado.compute.executor import Executor
from kamado.compute.instance_types import reservation_for, resolve_instance_type
from kamado.compute.taskspec import Limits, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.clock import Clock, SystemClock
from kamado.core.errors import ConcurrentModification, KamadoError, NotFound, ResourceInUse
from kamado.core.lifecycle import SecondaryStatus, TrainingJobStatus, sources_for
from kamado.core.loop import ReconcileLoop, StepPool
from kamado.core.settings import Settings
from kamado.store.base import MetadataStore
from kamado.store.records import ResourceRecord
from kamado.training import contract
from kamado.training.environments import EnvironmentBuilder, EnvironmentBuildError, packages_hash_of_current
from kamado.training.failure import failure_reason
from kamado.training.inputs import PrepareError, materialise_inputs
from kamado.training.log_follower import LogFollower
from kamado.training.outputs import output_prefix, upload_outputs
from kamado.training.secrets import SecretHooks
from kamado.training.service import KIND, secondary_patch
from kamado.training.spec import CreateTrainingJobRequest

#: Key of the attempt handle that holds the task spec until the executor has confirmed the submission.
PENDING_SPEC = "pending_spec"

log = logging.getLogger("kamado.training")

ACTIVE_STATES = [str(TrainingJobStatus.IN_PROGRESS), str(TrainingJobStatus.STOPPING)]
#: Unexpected failures while preparing a job before it is failed (a user error fails it at once).
MAX_PREPARE_FAILURES = 3


class TrainingReconciler(ReconcileLoop):
    name = "training-reconciler"

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        executor: Executor,
        settings: Settings,
        *,
        clock: Clock | None = None,
        workers: int = 4,
        inline: bool = False,
    ) -> None:
        """``inline`` runs slow steps on the calling thread: deterministic unit tests, no sleeps."""
        self.store = store
        self.artifacts = artifacts
        self.executor = executor
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ledger = CapacityLedger(executor.capacity())
        self.jobs_root = settings.home / "jobs"
        self.envs = EnvironmentBuilder(settings.home / "envs")
        self._steps = StepPool(workers, "kamado-train", inline=inline)
        self._handles: dict[str, TaskHandle] = {}
        self._cancelled: set[str] = set()
        self.logs = LogFollower(store, executor, self.clock, KIND)
        #: Secret injection and redaction, plugged in by the API layer (None: Environment passes as written).
        self.secrets: SecretHooks | None = None
        self._redactors: dict[str, Callable[[str], str]] = {}
        #: task id -> {variable: secret reference}: what a stored task spec holds instead of the values.
        self._secret_refs: dict[str, dict[str, str]] = {}
        self.logs.redact = self._redact
        self._packages_hash: str | None = None
        super().__init__(settings.reconcile_interval_s)
        self._prepare_failures: dict[str, int] = {}
        #: Called with (job name, parent name) when a job with a parent ends or stores new metrics, so the
        #: parent's reconciler (tuning) reacts at once.
        self.child_listeners: list[Callable[[str, str], None]] = []
        executor.on_task_end(lambda _task_id: self.wake())

    # -- loop -----------------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._steps.shutdown()

    def idle(self) -> bool:
        """True when no job is in progress (used for idle shutdown of auto-started servers)."""
        return not self.store.list_in_states(KIND, ACTIVE_STATES)

    def tick(self) -> None:
        jobs = self.store.list_in_states(KIND, ACTIVE_STATES)
        # Running jobs first, so after a restart their capacity is re-reserved before queued jobs take it.
        jobs.sort(key=lambda r: (not r.status.get("AttemptActive"), r.created_at))
        for job in jobs:
            if self._steps.busy(job.name):
                continue
            try:
                self._step(job)
            except NotFound:
                continue  # deleted under us
            except Exception:
                log.exception("reconciling training job %s failed", job.name)

    def _spawn(self, name: str, fn: Any, *args: Any) -> None:
        self._steps.spawn(name, fn, *args)

    # -- one step -------------------------------------------------------------------------------------
    def _step(self, job: ResourceRecord) -> None:
        st = job.status
        secondary = st.get("SecondaryStatus")
        if st.get("AttemptActive"):
            self._watch(job)
            return
        if secondary == str(SecondaryStatus.UPLOADING) and st.get("TaskOutcome"):
            self._spawn(job.name, self._finish, job.name)  # resumed after a restart mid-upload
            return
        if st.get("StopRequested") or job.state == str(TrainingJobStatus.STOPPING):
            self.ledger.release(job.name)
            self._terminal(
                job.name,
                TrainingJobStatus.STOPPED,
                SecondaryStatus.STOPPED,
                "Training job stopped before it started",
                reason=None,
            )
            return
        # Not started yet (or restarted mid-preparation): admit it when capacity frees.
        req = CreateTrainingJobRequest.model_validate(job.spec)
        reservation = reservation_for(resolve_instance_type(req.ResourceConfig.InstanceType), self.executor.capacity())
        if not self.ledger.try_reserve(job.name, reservation):
            if secondary != str(SecondaryStatus.PENDING):
                patch = secondary_patch(
                    st,
                    SecondaryStatus.PENDING,
                    "Waiting for capacity: the executor is running other jobs",
                    self.clock.now(),
                )
                self.store.update_status(KIND, job.name, patch)
            return
        self._spawn(job.name, self._prepare_and_launch, job.name)

    # -- starting -------------------------------------------------------------------------------------
    def _prepare_and_launch(self, name: str) -> None:
        try:
            self._prepare_and_launch_once(name)
        except Exception as exc:
            # An unexpected fault (artifact store, disk full, ...): retried on later ticks, but not forever.
            failures = self._prepare_failures.get(name, 0) + 1
            self._prepare_failures[name] = failures
            log.exception("training job %s: preparing attempt failed (%d of %d)", name, failures, MAX_PREPARE_FAILURES)
            if failures >= MAX_PREPARE_FAILURES:
                self.ledger.release(name)
                self._prepare_failures.pop(name, None)
                self._terminal(
                    name,
                    TrainingJobStatus.FAILED,
                    SecondaryStatus.FAILED,
                    "Training job failed",
                    reason=f"InternalServerError: could not prepare the job: {exc}",
                )
            raise

    def _prepare_and_launch_once(self, name: str) -> None:
        job = self.store.get(KIND, name)
        if job.status.get("AttemptActive") or TrainingJobStatus(job.state).is_terminal():
            return
        req = CreateTrainingJobRequest.model_validate(job.spec)
        now = self.clock.now()
        self.store.update_status(
            KIND,
            name,
            secondary_patch(job.status, SecondaryStatus.DOWNLOADING, "Downloading input data", now),
        )
        attempts = self.store.list_attempts(KIND, name)
        if attempts and attempts[-1].ended_at is None:
            # An attempt was recorded but its status flag was not (data from an older server): adopt it, so
            # the watch path re-attaches the task or reports it lost, instead of starting a second one.
            self.store.update_status(KIND, name, {"Attempt": attempts[-1].attempt, "AttemptActive": True})
            return
        attempt_no = (attempts[-1].attempt if attempts else 0) + 1
        retries = req.RetryStrategy.MaximumRetryAttempts if req.RetryStrategy else 0
        if attempt_no > retries + 1:
            self.ledger.release(name)
            self._terminal(
                name,
                TrainingJobStatus.FAILED,
                SecondaryStatus.FAILED,
                "Training job failed",
                reason=f"ExecutorLost: all {retries + 1} attempt(s) were lost to platform faults",
            )
            return
        job_dir = self.jobs_root / name / f"attempt-{attempt_no}"
        layout = contract.JobLayout(job_dir / "opt-ml")
        install_log: list[str] = []
        try:
            if job_dir.exists():
                shutil.rmtree(job_dir)
            layout.create([c.ChannelName for c in req.InputDataConfig])
            lineage = materialise_inputs(self.artifacts, req, layout)
            python, packages_hash = self._environment(layout, install_log.append)
            lineage["PackagesHash"] = packages_hash
            contract.write_config_files(layout, req)
            spec = self._task_spec(job, req, layout, attempt_no, python)
            if not spec.mounts and self.settings.opt_ml_namespace == "auto":
                install_log.append(
                    "kamado: this server cannot give the job a private /opt/ml (mount namespaces are refused); "
                    "SM_* variables point at the job's directory instead. To enable /opt/ml, run the server as "
                    "root or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1).\n"
                )
        except (PrepareError, EnvironmentBuildError) as exc:
            self._flush_install_log(name, attempt_no, install_log)
            self.ledger.release(name)
            self._terminal(
                name,
                TrainingJobStatus.FAILED,
                SecondaryStatus.FAILED,
                "Training job failed",
                reason=f"ClientError: {exc}"[:1024],
            )
            return
        self._flush_install_log(name, attempt_no, install_log)
        job = self.store.get(KIND, name)
        if job.status.get("StopRequested") or TrainingJobStatus(job.state).is_terminal():
            self.ledger.release(name)
            if not TrainingJobStatus(job.state).is_terminal():
                self._terminal(
                    name,
                    TrainingJobStatus.STOPPED,
                    SecondaryStatus.STOPPED,
                    "Training job stopped before it started",
                    reason=None,
                )
            return
        if not self._record_attempt(name, attempt_no, spec, job_dir, lineage):
            return
        handle = self.executor.submit(spec)
        self.store.update_attempt_handle(
            KIND, name, attempt_no, {**handle.data, "task_id": spec.task_id, "executor": self.executor.name}
        )
        self._handles[name] = handle

    def _record_attempt(
        self, name: str, attempt_no: int, spec: TaskSpec, job_dir: Path, lineage: dict[str, Any]
    ) -> bool:
        """Record the attempt and mark the job as running it in one transaction, before anything starts.

        After a crash anywhere from here on, the restarted reconciler finds an active attempt and
        re-attaches its task (submit is idempotent by task id) or reports it lost: never a second start.
        """
        for _ in range(10):
            job = self.store.get(KIND, name)
            started = self.clock.now()
            patch: dict[str, Any] = {
                "Attempt": attempt_no,
                "AttemptActive": True,
                "JobDir": str(job_dir),
                "PrivateOptMl": bool(spec.mounts),
                "Lineage": lineage,
                **secondary_patch(
                    job.status,
                    SecondaryStatus.TRAINING,
                    "Training image download completed. Training in progress.",
                    started,
                ),
            }
            if not job.status.get("TrainingStartTime"):
                patch["TrainingStartTime"] = started
            try:
                self.store.start_attempt(
                    KIND,
                    name,
                    attempt_no,
                    started_at=started,
                    # The spec rides along until the executor confirms the submission (the handle is then
                    # replaced): a server killed in between re-submits it on restart, idempotently by task id.
                    handle={
                        "task_id": spec.task_id,
                        "executor": self.executor.name,
                        PENDING_SPEC: self._storable(spec),
                    },
                    status_patch=patch,
                    expected_version=job.version,
                )
                return True
            except ConcurrentModification:
                continue  # a stop request or similar landed meanwhile: recompute the patch from fresh state
            except ResourceInUse:
                return False  # another controller got there first; it owns this attempt
        raise ConcurrentModification(f"Training job '{name}' kept changing while its attempt was being recorded.")

    def _storable(self, spec: TaskSpec) -> dict[str, Any]:
        """The task spec as stored in the metadata store: secret values replaced by their references."""
        data = spec.to_json()
        refs = self._secret_refs.pop(spec.task_id, None)
        if refs:
            data["env"] = {**data["env"], **refs}
        return data

    def _environment(self, layout: contract.JobLayout, log_line: Any) -> tuple[str, str]:
        requirements = layout.code_dir / "requirements.txt"
        if requirements.exists():
            return self.envs.ensure(requirements, log_line)
        if self._packages_hash is None:
            self._packages_hash = packages_hash_of_current()
        return __import__("sys").executable, self._packages_hash

    def _flush_install_log(self, name: str, attempt: int, lines: list[str]) -> None:
        if lines:
            now = self.clock.now()
            self.store.append_logs(KIND, name, attempt, [(now, "".join(lines))])

    def _task_spec(
        self,
        job: ResourceRecord,
        req: CreateTrainingJobRequest,
        layout: contract.JobLayout,
        attempt_no: int,
        python: str,
    ) -> TaskSpec:
        itype = resolve_instance_type(req.ResourceConfig.InstanceType)
        reservation = reservation_for(itype, self.executor.capacity())
        policy = self.settings.opt_ml_namespace
        in_namespace = policy != "off" and self.executor.capabilities.mount_namespaces
        if policy == "require" and not in_namespace:
            raise PrepareError(
                "a private /opt/ml needs mount namespaces, which this kernel or user refuses; run the server as "
                "root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or set "
                "KAMADO_OPT_ML_NAMESPACE=auto to run with SM_* paths only"
            )
        user_args = contract.script_args(req.HyperParameters)
        num_cpus = max(1, int(reservation.cpus))
        env = contract.training_environment(
            layout,
            req,
            job_arn=job.arn,
            in_namespace=in_namespace,
            num_cpus=num_cpus,
            num_gpus=reservation.gpus,
            python_bin_dir=str(Path(python).parent),
            user_args=user_args,
        )
        if self.secrets is not None:
            try:
                resolved = self.secrets.resolve(req.Environment, project=job.project)
            except KamadoError as exc:
                raise PrepareError(f"a secret in Environment could not be read: {exc.message}") from exc
            env.update(resolved)  # the value reaches the worker's environment only, never the spec or store
            self._secret_refs[f"training-job/{job.name}/{attempt_no}"] = {k: req.Environment[k] for k in resolved}
            self._redactors[job.name] = self.secrets.redactor(resolved.values())
        first_start = job.status.get("TrainingStartTime")
        budget = float(req.StoppingCondition.MaxRuntimeInSeconds)
        if first_start:  # MaxRuntime covers all attempts, as in SageMaker
            budget = max(1.0, budget - (self.clock.now() - float(first_start)))
        return TaskSpec(
            task_id=f"training-job/{job.name}/{attempt_no}",
            command=contract.build_command(python, layout, req, in_namespace=in_namespace, user_args=user_args),
            env=env,
            workdir=str(layout.code_dir),
            resources=reservation,
            limits=Limits(
                max_runtime_s=budget,
                memory_mb=itype.memory_mb,
                max_processes=self.settings.max_processes,
                stop_grace_s=self.settings.stop_grace_s,
            ),
            mounts={contract.OPT_ML: str(layout.root)} if in_namespace else {},
            mount_policy="require" if in_namespace else "auto",
            network="none" if req.EnableNetworkIsolation else "host",
            writable=[str(layout.root), str(layout.home_dir)],  # its /opt/ml and HOME; nothing else of the server's
        )

    # -- running --------------------------------------------------------------------------------------
    def _handle_for(self, job: ResourceRecord) -> TaskHandle | None:
        handle = self._handles.get(job.name)
        if handle is not None:
            return handle
        attempt_no = int(job.status.get("Attempt", 0))
        attempts = [a for a in self.store.list_attempts(KIND, job.name) if a.attempt == attempt_no]
        if not attempts:
            return None
        data = dict(attempts[0].handle)
        pending = data.pop(PENDING_SPEC, None)
        if isinstance(pending, dict):
            # Recorded, but the server stopped before the executor confirmed the submission. Submit is
            # idempotent by task id: this starts the task if it never started and attaches if it did.
            spec = TaskSpec.from_json(pending)
            try:
                if self.secrets is not None:
                    spec.env.update(self.secrets.resolve(spec.env, project=job.project))  # the spec holds references
                handle = self.executor.submit(spec)
            except Exception:
                failures = self._prepare_failures.get(job.name, 0) + 1
                self._prepare_failures[job.name] = failures
                if failures < MAX_PREPARE_FAILURES:
                    raise  # logged by the tick; tried again on the next one
                log.exception("training job %s: the executor keeps refusing its task", job.name)
                return None  # reported lost: retried within the job's RetryStrategy or failed
            self.store.update_attempt_handle(
                KIND, job.name, attempt_no, {**handle.data, "task_id": spec.task_id, "executor": self.executor.name}
            )
        else:
            handle = self.executor.attach(str(data.get("task_id")), data)
        self._handles[job.name] = handle
        return handle

    def _watch(self, job: ResourceRecord) -> None:
        name = job.name
        handle = self._handle_for(job)
        req = CreateTrainingJobRequest.model_validate(job.spec)
        if name not in self.ledger.holders():
            itype = resolve_instance_type(req.ResourceConfig.InstanceType)
            self.ledger.try_reserve(name, reservation_for(itype, self.executor.capacity()))
        if handle is None:
            status = TaskStatus(state=TaskState.LOST, reason="the attempt's task record is missing (ExecutorLost)")
        else:
            status = self.executor.poll(handle)
            if self.logs.pull(name, int(job.status.get("Attempt", 0)), handle, req):
                self._tell_parent(job)
        if (
            job.status.get("StopRequested") or job.state == str(TrainingJobStatus.STOPPING)
        ) and not status.state.is_terminal():
            if name not in self._cancelled and handle is not None:
                self._cancelled.add(name)
                self.executor.cancel(handle, self.settings.stop_grace_s)
            return
        if not status.state.is_terminal():
            self._enforce_runtime_backstop(job, req, handle)
            return
        attempt_no = int(job.status.get("Attempt", 0))
        if handle is not None:
            self.logs.pull(name, attempt_no, handle, req, final=True)
        with contextlib.suppress(NotFound):
            self.store.end_attempt(
                KIND,
                name,
                attempt_no,
                state=str(status.state),
                ended_at=status.ended_at or self.clock.now(),
                exit_code=status.exit_code,
                reason=status.reason,
            )
        self._handles.pop(name, None)
        self._cancelled.discard(name)
        self.ledger.release(name)
        retries = req.RetryStrategy.MaximumRetryAttempts if req.RetryStrategy else 0
        if status.state == TaskState.LOST and attempt_no <= retries and not job.status.get("StopRequested"):
            patch = {
                "AttemptActive": False,
                **secondary_patch(
                    job.status,
                    SecondaryStatus.RESTARTING,
                    f"Restarting after a platform fault ({status.reason}); attempt {attempt_no + 1} of {retries + 1}",
                    self.clock.now(),
                ),
            }
            self.store.update_status(KIND, name, patch)
            if handle is not None:
                self.executor.cleanup(handle)
            return
        outcome = {
            "state": str(status.state),
            "exit_code": status.exit_code,
            "signal": status.signal,
            "reason": status.reason,
            "oom": status.oom,
            "started_at": status.started_at,
            "ended_at": status.ended_at,
            "cpu_seconds": status.cpu_seconds,
            "peak_memory_mb": status.peak_memory_mb,
        }
        patch = {
            "AttemptActive": False,
            "TaskOutcome": outcome,
            **secondary_patch(
                job.status, SecondaryStatus.UPLOADING, "Uploading generated training model", self.clock.now()
            ),
        }
        self.store.update_status(KIND, name, patch)
        # The executor's files (the raw log) are archived and cleaned up by _finish, off this thread.
        self._spawn(name, self._finish, name)

    def _enforce_runtime_backstop(
        self, job: ResourceRecord, req: CreateTrainingJobRequest, handle: TaskHandle | None
    ) -> None:
        """The executor enforces MaxRuntime itself; this catches an executor that failed to."""
        start = job.status.get("TrainingStartTime")
        if handle is None or not start or job.name in self._cancelled:
            return
        deadline = float(start) + req.StoppingCondition.MaxRuntimeInSeconds + self.settings.stop_grace_s + 30
        if self.clock.now() > deadline:
            self._cancelled.add(job.name)
            self.executor.cancel(handle, 0)

    # -- finishing ------------------------------------------------------------------------------------
    def _finish(self, name: str) -> None:
        job = self.store.get(KIND, name)
        if TrainingJobStatus(job.state).is_terminal():
            return
        req = CreateTrainingJobRequest.model_validate(job.spec)
        outcome = job.status.get("TaskOutcome") or {}
        layout = contract.JobLayout(Path(job.status.get("JobDir", "")) / "opt-ml")
        state = TaskState(outcome.get("state", TaskState.LOST))
        patch: dict[str, Any] = {
            "ResourceUsage": {
                "CpuSeconds": outcome.get("cpu_seconds"),
                "PeakMemoryMB": outcome.get("peak_memory_mb"),
                "WallSeconds": (outcome["ended_at"] - outcome["started_at"])
                if outcome.get("ended_at") and outcome.get("started_at")
                else None,
            }
        }
        try:
            patch.update(upload_outputs(self.artifacts, req, layout))
        except Exception as exc:
            log.exception("uploading outputs of %s failed", name)
            if state == TaskState.SUCCEEDED:
                state = TaskState.FAILED
                outcome["platform_error"] = f"uploading the model failed: {exc}"
        patch.update(self._archive_log_and_cleanup(job, req))
        start = job.status.get("TrainingStartTime")
        end = self.clock.now()
        patch["TrainingEndTime"] = end
        if start:
            patch["TrainingTimeInSeconds"] = max(1, round(end - float(start)))
        stop_requested = job.status.get("StopRequested") or job.state == str(TrainingJobStatus.STOPPING)
        if state == TaskState.SUCCEEDED:
            self._terminal(
                name,
                TrainingJobStatus.COMPLETED,
                SecondaryStatus.COMPLETED,
                "Training job completed",
                reason=None,
                patch=patch,
            )
            # Everything of value is in the artifact and metadata stores now; failed and stopped jobs keep
            # their directory for inspection.
            shutil.rmtree(layout.root.parent, ignore_errors=True)
        elif state == TaskState.TIMED_OUT:
            limit = req.StoppingCondition.MaxRuntimeInSeconds
            self._terminal(
                name,
                TrainingJobStatus.STOPPED,
                SecondaryStatus.MAX_RUNTIME_EXCEEDED,
                f"Training job reached MaxRuntimeInSeconds ({limit} s)",
                reason=f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds={limit}",
                patch=patch,
            )
        elif state == TaskState.STOPPED or (stop_requested and state != TaskState.LOST):
            self._terminal(
                name,
                TrainingJobStatus.STOPPED,
                SecondaryStatus.STOPPED,
                "Training job stopped",
                reason=None,
                patch=patch,
            )
        else:
            tail = self._log_tail(name)
            reason = self._redact(name, failure_reason(outcome, layout.failure_file, tail, program=req.program()))
            if "/opt/ml" in reason and not job.status.get("PrivateOptMl"):
                reason = (
                    reason[:600] + " | hint: this job had no private /opt/ml (the kernel refused a mount "
                    "namespace); use the SM_* variables, or run the server as root or with unprivileged user "
                    "namespaces enabled"
                )
            self._terminal(
                name,
                TrainingJobStatus.FAILED,
                SecondaryStatus.FAILED,
                "Training job failed",
                reason=reason,
                patch=patch,
            )
        self.logs.forget(name)
        self._redactors.pop(name, None)

    def _redact(self, name: str, text: str) -> str:
        """Mask the secret values job ``name`` received (looked up again after a server restart)."""
        if self.secrets is None:
            return text
        redact = self._redactors.get(name)
        if redact is None:
            try:
                rec = self.store.get(KIND, name)
                env = CreateTrainingJobRequest.model_validate(rec.spec).Environment
                redact = self.secrets.redactor(self.secrets.resolve(env, project=rec.project).values())
            except Exception:
                log.exception("could not load the secrets of %s for redaction; masking its whole text", name)
                return "[kamado: text withheld: the job's secrets could not be loaded to redact it]\n"
            self._redactors[name] = redact
        return redact(text)

    def _archive_log_and_cleanup(self, job: ResourceRecord, req: CreateTrainingJobRequest) -> dict[str, Any]:
        """Keep the attempt's complete raw log in the artifact store (the metadata store keeps at most
        MAX_STORED_LOG_BYTES of it), then let the executor delete its files for the task."""
        attempt_no = int(job.status.get("Attempt", 0))
        records = [a for a in self.store.list_attempts(KIND, job.name) if a.attempt == attempt_no]
        if not records:
            return {}
        handle = self.executor.attach(str(records[0].handle.get("task_id")), dict(records[0].handle))
        out: dict[str, Any] = {}
        tmp_dir = self.settings.home / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{job.name}-attempt-{attempt_no}.log"
        try:
            with open(tmp, "wb") as f:
                offset = 0
                while True:
                    data, offset = self.executor.read_logs(handle, offset)
                    if not data:
                        break
                    f.write(data)
            if tmp.stat().st_size and self.secrets is not None and req.Environment:
                # The archived log is as visible as the stored one: mask the job's secret values in it too.
                tmp.write_text(self._redact(job.name, tmp.read_text(errors="replace")))
            if tmp.stat().st_size:
                key = f"{output_prefix(self.artifacts, req)}/logs/attempt-{attempt_no}.log"
                self.artifacts.put_file(key, tmp)
                out["LogArtifacts"] = self.artifacts.uri(key)
        except NotFound:
            pass  # the task never started: nothing to keep
        finally:
            tmp.unlink(missing_ok=True)
        try:
            self.executor.cleanup(handle)
        except Exception:
            log.exception("cleaning up the task of %s failed", job.name)
        return out

    def _tell_parent(self, job: ResourceRecord) -> None:
        if job.parent:
            for listener in list(self.child_listeners):
                listener(job.name, job.parent)

    def _log_tail(self, name: str) -> str:
        return "".join(c.data for c in self.store.tail_logs(KIND, name, limit=50))[-20_000:]

    def _terminal(
        self,
        name: str,
        state: TrainingJobStatus,
        secondary: SecondaryStatus,
        message: str,
        *,
        reason: str | None,
        patch: dict[str, Any] | None = None,
    ) -> None:
        job = self.store.get(KIND, name)
        if TrainingJobStatus(job.state).is_terminal():
            return
        now = self.clock.now()
        full = dict(patch or {})
        full.update(secondary_patch(job.status, secondary, message, now))
        # Close the final transition: a terminal status has no successor.
        full["SecondaryStatusTransitions"][-1]["EndTime"] = now
        full["AttemptActive"] = False
        if reason:
            full["FailureReason"] = reason[:1024]
        if "TrainingEndTime" not in full and job.status.get("TrainingStartTime"):
            full["TrainingEndTime"] = now
        self.store.transition(KIND, name, from_states=sources_for(state), to_state=str(state), status_patch=full)
        self._tell_parent(job)
        log.info("training job %s is %s%s", name, state, f": {reason}" if reason else "")
