"""The processing reconciler against the fake executor and clock: restarts never lose or duplicate a task."""

from __future__ import annotations

from typing import Any

import pytest

from kamado.compute.taskspec import TaskSpec, TaskState
from kamado.processing.reconciler import ProcessingReconciler
from kamado.processing.service import KIND, ProcessingService
from kamado.processing.spec import CreateProcessingJobRequest
from tests.training.test_reconciler import env as _fake_env  # noqa: F401  (a fixture, by that name)


@pytest.fixture
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Training's reconciler fixture: the fake executor, a fake clock, real SQLite and artifact stores."""
    return request.getfixturevalue("_fake_env")  # type: ignore[no-any-return]


def _reconciler(env: dict[str, Any]) -> ProcessingReconciler:
    return ProcessingReconciler(
        env["store"], env["artifacts"], env["executor"], env["settings"], clock=env["clock"], inline=True
    )


def _create(env: dict[str, Any], count: int = 2) -> None:
    req = {
        "ProcessingJobName": "p",
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": count, "InstanceType": "local"}},
        "AppSpecification": {"ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/train.py"]},
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {"S3Uri": env["source"], "LocalPath": "/opt/ml/processing/input/code"},
            }
        ],
    }
    ProcessingService(env["store"], env["artifacts"], env["settings"]).create(
        CreateProcessingJobRequest.model_validate(req)
    )


def test_crash_between_recording_and_submitting_submits_each_instance_once(
    env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _create(env)
    executor = env["executor"]

    def crash(spec: TaskSpec) -> Any:
        raise RuntimeError("server killed before the executor answered")

    with monkeypatch.context() as m:
        m.setattr(executor, "submit", crash)
        _reconciler(env).tick()
    job = env["store"].get(KIND, "p")
    assert job.status["AttemptActive"] and [a.attempt for a in env["store"].list_attempts(KIND, "p")] == [1, 2]
    assert executor.submits == []

    _reconciler(env).tick()  # restarted server: submits the recorded specs
    assert executor.submits == ["processing-job/p/algo-1", "processing-job/p/algo-2"]
    _reconciler(env).tick()  # and again: re-attaches, never a second start
    assert executor.submits == ["processing-job/p/algo-1", "processing-job/p/algo-2"]

    executor.tasks["processing-job/p/algo-1"].state = TaskState.SUCCEEDED
    executor.tasks["processing-job/p/algo-1"].exit_code = 0
    rec = _reconciler(env)
    rec.tick()
    assert env["store"].get(KIND, "p").state == "InProgress"
    executor.tasks["processing-job/p/algo-2"].state = TaskState.FAILED
    executor.tasks["processing-job/p/algo-2"].exit_code = 3
    rec.tick()
    job = env["store"].get(KIND, "p")
    assert job.state == "Failed"
    assert job.status["FailureReason"].startswith("algo-2: AlgorithmError: the entry point exited with code 3")
