"""The training reconciler against a fake executor and a fake clock: every path, in milliseconds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kamado.artifacts.local import LocalArtifactStore
from kamado.artifacts.trees import pack_dir, store_tree_from_archive, tree_uri
from kamado.compute.executor import Executor, ExecutorCapabilities
from kamado.compute.taskspec import Resources, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.clock import FakeClock
from kamado.core.settings import Settings
from kamado.store.sql import SqlStore
from kamado.training.reconciler import TrainingReconciler
from kamado.training.service import KIND, TrainingService
from kamado.training.spec import CreateTrainingJobRequest


@dataclass
class FakeTask:
    spec: TaskSpec
    state: TaskState = TaskState.RUNNING
    log: bytes = b""
    exit_code: int | None = None
    reason: str | None = None


@dataclass
class FakeExecutor(Executor):
    cpus: float = 2.0
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    submits: list[str] = field(default_factory=list)
    cancels: list[tuple[str, float | None]] = field(default_factory=list)
    attaches: list[str] = field(default_factory=list)
    name: str = "fake"

    @property
    def capabilities(self) -> ExecutorCapabilities:
        return ExecutorCapabilities(survives_restart=True)

    def capacity(self) -> Resources:
        return Resources(cpus=self.cpus)

    def submit(self, spec: TaskSpec) -> TaskHandle:
        self.submits.append(spec.task_id)
        self.tasks.setdefault(spec.task_id, FakeTask(spec))
        return TaskHandle(task_id=spec.task_id, executor=self.name, data={"fake": spec.task_id})

    def poll(self, handle: TaskHandle) -> TaskStatus:
        t = self.tasks.get(handle.task_id)
        if t is None:
            return TaskStatus(state=TaskState.LOST, reason="unknown task")
        return TaskStatus(
            state=t.state,
            exit_code=t.exit_code,
            reason=t.reason,
            started_at=1.0,
            ended_at=2.0,
            cpu_seconds=0.5,
            peak_memory_mb=10.0,
        )

    def read_logs(self, handle: TaskHandle, offset: int, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        data = self.tasks[handle.task_id].log[offset : offset + max_bytes] if handle.task_id in self.tasks else b""
        return data, offset + len(data)

    def cancel(self, handle: TaskHandle, grace_s: float | None = None) -> None:
        self.cancels.append((handle.task_id, grace_s))

    def attach(self, task_id: str, data: dict[str, object]) -> TaskHandle:
        self.attaches.append(task_id)
        return TaskHandle(task_id=task_id, executor=self.name, data=dict(data))

    def cleanup(self, handle: TaskHandle) -> None:
        pass


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    settings = Settings.from_env(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
        artifacts_url=str(tmp_path / "art"),
        stop_grace_s=5.0,
    )
    store = SqlStore(settings.database_url)
    artifacts = LocalArtifactStore(tmp_path / "art")
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('hi')\n")
    manifest = pack_dir(src, tmp_path / "src.tar.gz")
    store_tree_from_archive(artifacts, tmp_path / "src.tar.gz", manifest.digest)
    executor = FakeExecutor()
    clock = FakeClock()
    return {
        "settings": settings,
        "store": store,
        "artifacts": artifacts,
        "executor": executor,
        "clock": clock,
        "source": tree_uri(artifacts, manifest.digest),
        "service": TrainingService(store, artifacts, settings),
    }


def _reconciler(env: dict[str, Any]) -> TrainingReconciler:
    return TrainingReconciler(
        env["store"], env["artifacts"], env["executor"], env["settings"], clock=env["clock"], inline=True
    )


def _create(env: dict[str, Any], name: str, **extra: Any) -> None:
    req = {
        "TrainingJobName": name,
        "HyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(env["source"])},
        "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "acc", "Regex": "acc=([0-9.]+)"}]},
        **extra,
    }
    env["service"].create(CreateTrainingJobRequest.model_validate(req))


def _job(env: dict[str, Any], name: str) -> Any:
    return env["store"].get(KIND, name)


def test_happy_path_reaches_completed_with_metrics_and_model(env: dict[str, Any]) -> None:
    _create(env, "j")
    rec = _reconciler(env)
    rec.tick()
    assert env["executor"].submits == ["training-job/j/1"]
    assert _job(env, "j").status["SecondaryStatus"] == "Training"
    task = env["executor"].tasks["training-job/j/1"]
    task.log = b"epoch 1\nacc=0.5\npartial line without newline"
    rec.tick()
    assert [p.value for p in env["store"].read_metrics(KIND, "j")] == [0.5]
    task.log += b" acc=0.9\n"
    task.state, task.exit_code = TaskState.SUCCEEDED, 0
    rec.tick()
    job = _job(env, "j")
    assert job.state == "Completed", job.status.get("FailureReason")
    assert [p.value for p in env["store"].read_metrics(KIND, "j")] == [0.5, 0.9]
    logs = "".join(c.data for c in env["store"].read_logs(KIND, "j"))
    notice, rest = logs.split("\n", 1)
    assert notice.startswith("kamado: this server cannot give the job a private /opt/ml"), "says how to enable it"
    assert rest == "epoch 1\nacc=0.5\npartial line without newline acc=0.9\n"
    assert env["artifacts"].exists("training-jobs/j/output/model.tar.gz")
    assert [t["Status"] for t in job.status["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all(t["EndTime"] is not None for t in job.status["SecondaryStatusTransitions"])


def test_platform_fault_is_retried_within_the_budget(env: dict[str, Any]) -> None:
    _create(env, "r", RetryStrategy={"MaximumRetryAttempts": 1})
    rec = _reconciler(env)
    rec.tick()
    env["executor"].tasks["training-job/r/1"].state = TaskState.LOST
    rec.tick()
    assert _job(env, "r").status["SecondaryStatus"] == "Restarting"
    rec.tick()
    assert env["executor"].submits == ["training-job/r/1", "training-job/r/2"]
    env["executor"].tasks["training-job/r/2"].state = TaskState.LOST
    rec.tick()
    job = _job(env, "r")
    assert job.state == "Failed" and job.status["FailureReason"].startswith("ExecutorLost")
    attempts = env["store"].list_attempts(KIND, "r")
    assert [(a.attempt, a.state) for a in attempts] == [(1, "Lost"), (2, "Lost")]


def test_user_errors_are_not_retried(env: dict[str, Any]) -> None:
    _create(env, "u", RetryStrategy={"MaximumRetryAttempts": 3})
    rec = _reconciler(env)
    rec.tick()
    task = env["executor"].tasks["training-job/u/1"]
    task.log = b"Traceback (most recent call last):\n  File x\nKeyError: 'label'\n"
    task.state, task.exit_code = TaskState.FAILED, 1
    rec.tick()
    job = _job(env, "u")
    assert job.state == "Failed" and env["executor"].submits == ["training-job/u/1"]
    assert job.status["FailureReason"] == "AlgorithmError: KeyError: 'label' (exit code 1)"


def test_restarted_reconciler_reattaches_instead_of_starting_again(env: dict[str, Any]) -> None:
    _create(env, "a")
    _reconciler(env).tick()
    env["executor"].tasks["training-job/a/1"].log = b"acc=0.7\n"
    fresh = _reconciler(env)  # a new server process: nothing in memory
    fresh.tick()
    assert env["executor"].attaches == ["training-job/a/1"]
    assert env["executor"].submits == ["training-job/a/1"], "no second start"
    env["executor"].tasks["training-job/a/1"].state = TaskState.SUCCEEDED
    again = _reconciler(env)
    again.tick()
    assert _job(env, "a").state == "Completed"
    assert [p.value for p in env["store"].read_metrics(KIND, "a")] == [0.7], "log offset survives restarts"


def test_server_killed_between_recording_and_submitting_resubmits_the_same_task(env: dict[str, Any]) -> None:
    _create(env, "k")
    executor = env["executor"]
    real_submit = executor.submit

    def killed(spec: TaskSpec) -> TaskHandle:
        raise RuntimeError("the server died here")

    executor.submit = killed
    _reconciler(env).tick()
    job = _job(env, "k")
    assert job.status["AttemptActive"] and executor.tasks == {}, "the attempt is recorded, its task never submitted"
    executor.submit = real_submit
    _reconciler(env).tick()  # the restarted server
    assert executor.submits == ["training-job/k/1"], "submitted once, under the recorded attempt's task id"
    assert [a.attempt for a in env["store"].list_attempts(KIND, "k")] == [1]
    assert "pending_spec" not in env["store"].list_attempts(KIND, "k")[0].handle, "the submission is confirmed"
    executor.tasks["training-job/k/1"].state = TaskState.SUCCEEDED
    _reconciler(env).tick()
    assert _job(env, "k").state == "Completed"
    assert executor.submits == ["training-job/k/1"], "a confirmed submission is attached, never submitted again"


def test_a_submission_the_executor_keeps_refusing_ends_the_job(env: dict[str, Any]) -> None:
    _create(env, "r")

    def refuse(spec: TaskSpec) -> TaskHandle:
        raise RuntimeError("executor refuses")

    env["executor"].submit = refuse
    rec = _reconciler(env)
    for _ in range(10):
        rec.tick()
    job = _job(env, "r")
    assert job.state == "Failed" and "ExecutorLost" in job.status["FailureReason"]


def test_stop_cancels_with_grace_and_ends_stopped(env: dict[str, Any]) -> None:
    _create(env, "s")
    rec = _reconciler(env)
    rec.tick()
    env["service"].stop("s")
    rec.tick()
    rec.tick()
    assert env["executor"].cancels == [("training-job/s/1", 5.0)], "cancel once, with the configured grace"
    env["executor"].tasks["training-job/s/1"].state = TaskState.STOPPED
    rec.tick()
    assert _job(env, "s").state == "Stopped"


def test_stop_before_start_never_submits(env: dict[str, Any]) -> None:
    env["executor"].cpus = 1.0
    _create(env, "first")
    _create(env, "second")
    rec = _reconciler(env)
    rec.tick()
    assert env["executor"].submits == ["training-job/first/1"]
    assert _job(env, "second").status["SecondaryStatus"] == "Pending"
    env["service"].stop("second")
    rec.tick()
    assert _job(env, "second").state == "Stopped"
    assert env["executor"].submits == ["training-job/first/1"]


def test_runtime_backstop_cancels_a_task_the_executor_did_not_stop(env: dict[str, Any]) -> None:
    _create(env, "b", StoppingCondition={"MaxRuntimeInSeconds": 10})
    rec = _reconciler(env)
    rec.tick()
    env["clock"].advance(10 + 5 + 29)
    rec.tick()
    assert env["executor"].cancels == []
    env["clock"].advance(2)
    rec.tick()
    assert env["executor"].cancels == [("training-job/b/1", 0)]


def test_max_runtime_budget_covers_all_attempts(env: dict[str, Any]) -> None:
    _create(env, "m", StoppingCondition={"MaxRuntimeInSeconds": 100}, RetryStrategy={"MaximumRetryAttempts": 1})
    rec = _reconciler(env)
    rec.tick()
    assert env["executor"].tasks["training-job/m/1"].spec.limits.max_runtime_s == 100
    env["clock"].advance(40)
    env["executor"].tasks["training-job/m/1"].state = TaskState.LOST
    rec.tick()
    rec.tick()
    assert env["executor"].tasks["training-job/m/2"].spec.limits.max_runtime_s == pytest.approx(60)


def test_unexpected_prepare_faults_fail_the_job_after_bounded_retries(env: dict[str, Any]) -> None:
    _create(env, "p")
    env["artifacts"].delete(f"trees/{env['source'].rsplit('/', 1)[-1]}/train.py")  # a damaged upload
    rec = _reconciler(env)
    for _ in range(3):
        rec.tick()
    job = _job(env, "p")
    assert job.state == "Failed" and job.status["FailureReason"].startswith("InternalServerError")
    assert env["executor"].submits == []
    assert rec.ledger.holders() == {}, "capacity is released"


def test_completed_job_directory_is_removed_failed_is_kept(env: dict[str, Any]) -> None:
    _create(env, "ok")
    _create(env, "bad")
    rec = _reconciler(env)
    rec.tick()
    env["executor"].tasks["training-job/ok/1"].state = TaskState.SUCCEEDED
    env["executor"].tasks["training-job/bad/1"].state = TaskState.FAILED
    rec.tick()
    jobs = env["settings"].home / "jobs"
    assert not (jobs / "ok" / "attempt-1").exists()
    assert (jobs / "bad" / "attempt-1" / "opt-ml" / "code" / "train.py").exists()


def test_request_round_trips_losslessly_through_json(env: dict[str, Any]) -> None:
    raw = {
        "TrainingJobName": "rt",
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(env["source"]),
            "lr": "0.1",
        },
        "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "acc", "Regex": "acc=([0-9.]+)"}]},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3Uri": env["source"]}},
            }
        ],
        "ResourceConfig": {"InstanceType": "ml.m5.large"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
        "Environment": {"A": "1"},
        "Tags": [{"Key": "team", "Value": "x"}],
    }
    req = CreateTrainingJobRequest.model_validate(raw)
    again = CreateTrainingJobRequest.model_validate(json.loads(json.dumps(req.model_dump(mode="json"))))
    assert again == req
