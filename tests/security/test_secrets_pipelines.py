"""T12 for pipelines: a Task state passes a secret *reference* to the job it creates; the job's process gets
the value, and the execution (its input, output, history) and the job's log show only the reference or
``***``. A reference to a missing secret fails the Task state with the job API's error, naming the secret.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from kamado.sdk.errors import ExecutionFailed
from kamado.sdk.pipelines import StateMachine
from tests.live_server import LiveServer
from tests.security.test_secrets_canary import _files_containing

TRAIN = """
import os
key = os.environ["API_KEY"]
print("the pipeline gave me", key, flush=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "used"), "w").write(str(len(key)))
"""


def _definition() -> dict[str, Any]:
    return {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.job",
                    "HyperParameters": {
                        "sagemaker_program": '"train.py"',
                        "sagemaker_submit_directory.$": "States.JsonToString($.code)",
                    },
                    # The reference comes from the execution's input, through a JSONPath, unchanged.
                    "Environment": {"API_KEY.$": "$.key"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 120},
                },
                "ResultSelector": {"name.$": "$.TrainingJobName", "env.$": "$.Environment"},
                "End": True,
            }
        },
    }


@pytest.fixture
def machine(live: LiveServer, tmp_path: Path) -> tuple[StateMachine, str]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    uri = live.client.upload_directory(code)
    return StateMachine.create("secret-pipe", _definition(), client=live.client), uri


def test_a_task_state_passes_a_secret_reference_and_the_value_shows_nowhere(
    live: LiveServer, machine: tuple[StateMachine, str]
) -> None:
    sm, code = machine
    canary = secrets.token_hex(32)
    ref = live.client.create_secret("pipe/api-key", canary)["Reference"]
    execution = sm.start({"job": "piped-secret", "code": code, "key": ref})
    out = execution.wait(timeout_s=180)
    assert out == {"name": "piped-secret", "env": {"API_KEY": ref}}, "the Task's output carries the reference"
    logs = "".join(e["Message"] for e in live.client.training_job_logs("piped-secret", limit=1000)["Events"])
    assert "the pipeline gave me ***" in logs, "the job's process got the value (and its log masks it)"
    history = execution.history()
    scheduled = [e for e in history if e["type"] == "TaskScheduled"]
    assert scheduled and ref in scheduled[0]["taskScheduledEventDetails"]["parameters"]
    everything = json.dumps(history) + json.dumps(execution.describe()) + logs
    assert canary not in everything
    assert _files_containing(live.home, canary.encode()) == [], "no file under KAMADO_HOME holds the value"


def test_a_missing_secret_fails_the_task_state_naming_it(live: LiveServer, machine: tuple[StateMachine, str]) -> None:
    sm, code = machine
    execution = sm.start({"job": "no-secret", "code": code, "key": "{{resolve:secretsmanager:pipe/missing}}"})
    with pytest.raises(ExecutionFailed) as failed:
        execution.wait(timeout_s=60)
    desc = execution.describe()
    assert desc["status"] == "FAILED" and desc.get("error") == "SageMaker.AmazonSageMakerException", desc
    assert "pipe/missing" in (desc.get("cause") or ""), desc
    assert "pipe/missing" in str(failed.value)
    assert live.client.list_training_jobs()["TrainingJobSummaries"] == [], "the job was never created"
