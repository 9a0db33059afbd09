"""State machines and executions end to end against a live server: create checks, runs, history, stop."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound, ResourceInUse
from kamado.sdk.pipelines import Execution, ExecutionFailed, StateMachine
from tests.live_server import LiveServer, task_visible_dir

SQS = "arn:aws:states:::sqs:sendMessage"
PASS_CHAIN: dict[str, Any] = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a.n, $.x)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}

HANDLERS = """
import os

def double(event, context):
    return {"y": event["x"] * 2}

def picky(event, context):
    raise ValueError("x must be positive, got " + str(event.get("x")))

def flaky(event, context):
    marker = os.path.join(os.environ["MARKERS"], "seen")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first call fails")
    return "second call works"
"""


def _function(live: LiveServer, tmp_path: Path, name: str, handler: str, env: dict[str, str] | None = None) -> None:
    src = tmp_path / "fn-src"
    src.mkdir(exist_ok=True)
    (src / "app.py").write_text(HANDLERS)
    live.client.create_function(
        {
            "FunctionName": name,
            "Handler": handler,
            "Code": {"Uri": live.client.upload_directory(src)},
            "Environment": {"Variables": env or {}},
        }
    )


def test_pass_chain_runs_and_records_its_history(live: LiveServer) -> None:
    sm = StateMachine.create("chain", PASS_CHAIN, client=live.client)
    execution = sm.start({"x": 41}, name="first")
    assert execution.wait(timeout_s=30) == {"sum": 42}
    desc = execution.describe()
    assert desc["status"] == "SUCCEEDED" and desc["executionArn"].endswith(":execution:chain:first")
    events = execution.history()
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("PassStateEntered") == 2 and "SucceedStateEntered" in types
    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), "event ids count from 1 without gaps"
    assert all(e["previousEventId"] < e["id"] for e in events)
    newest = execution.history(reverse=True)
    assert [e["id"] for e in newest] == [e["id"] for e in reversed(events)]
    listed = list(sm.executions(status="SUCCEEDED"))
    assert [e.name for e in listed] == ["first"]


def test_invalid_definition_lists_every_error_with_its_path(live: LiveServer) -> None:
    bad = {
        "StartAt": "Missing",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "A"}]},
        },
    }
    with pytest.raises(InvalidSpec) as info:
        StateMachine.create("bad", bad, client=live.client)
    fields = [d["field"] for d in info.value.details]
    assert any("StartAt" in f for f in fields), fields
    assert any("/States/A/Next" in f for f in fields), fields
    assert len(fields) >= 2, "all errors come back at once"
    with pytest.raises(NotFound):
        StateMachine("bad", client=live.client).describe()
    with pytest.raises(InvalidSpec, match="line 1"):
        StateMachine.create("bad", '{"StartAt": ', client=live.client)


def test_definition_naming_a_missing_function_is_refused_at_create(live: LiveServer) -> None:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "nope", "Payload.$": "$"},
                "End": True,
            }
        },
    }
    with pytest.raises(InvalidSpec, match="function 'nope' does not exist") as info:
        StateMachine.create("calls-nope", definition, client=live.client)
    assert info.value.details[0]["field"] == "definition/States/Call/Resource"
    with pytest.raises(InvalidSpec, match="unknown resource"):
        StateMachine.create(
            "sqs",
            {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": SQS, "End": True}}},
            client=live.client,
        )


def test_execution_input_must_be_json_and_names_are_idempotency_keys(live: LiveServer) -> None:
    sm = StateMachine.create("chain", PASS_CHAIN, client=live.client)
    with pytest.raises(InvalidSpec, match="not valid JSON"):
        live.client._request("POST", "/api/v1/state-machines/chain/executions", json={"input": "{x"})
    a = sm.start({"x": 1}, name="same")
    a.wait(timeout_s=30)
    with pytest.raises(ResourceInUse, match="already exists"):
        sm.start({"x": 2}, name="same")
    with pytest.raises(InvalidSpec, match="not a valid name"):
        sm.start({"x": 1}, name="has space")
    with pytest.raises(NotFound):
        StateMachine("absent", client=live.client).start({})


def test_function_tasks_with_catch_and_retry(live: LiveServer, tmp_path: Path) -> None:
    markers = task_visible_dir()  # the worker user of a root server cannot reach tmp_path
    _function(live, tmp_path, "double", "app.double")
    _function(live, tmp_path, "picky", "app.picky")
    _function(live, tmp_path, "flaky", "app.flaky", {"MARKERS": str(markers)})
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "double", "Payload.$": "$"},
                "ResultSelector": {"y.$": "$.Payload.y"},
                "ResultPath": "$.doubled",
                "Next": "Flaky",
            },
            "Flaky": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:000000000000:function:flaky",
                "Retry": [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "ResultPath": "$.flaky",
                "Next": "Picky",
            },
            "Picky": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:000000000000:function:picky",
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Recovered"}],
                "End": True,
            },
            "Recovered": {"Type": "Pass", "End": True},
        },
    }
    out = StateMachine.create("fns", definition, client=live.client).start({"x": 21}).wait(timeout_s=60)
    assert out["doubled"] == {"y": 42}
    assert out["flaky"] == "second call works"
    assert out["error"]["Error"] == "ValueError" and "x must be positive" in out["error"]["Cause"]


def test_uncaught_failure_fails_the_execution_with_error_and_cause(live: LiveServer, tmp_path: Path) -> None:
    _function(live, tmp_path, "picky", "app.picky")
    definition = {
        "StartAt": "Picky",
        "States": {"Picky": {"Type": "Task", "Resource": "arn:aws:lambda:local:0:function:picky", "End": True}},
    }
    execution = StateMachine.create("fails", definition, client=live.client).start({"x": -1})
    with pytest.raises(ExecutionFailed, match="ValueError") as info:
        execution.wait(timeout_s=60)
    assert info.value.description["status"] == "FAILED"
    assert "x must be positive, got -1" in info.value.description["cause"]
    types = [e["type"] for e in execution.history()]
    assert "LambdaFunctionFailed" in types or "TaskFailed" in types
    assert types[-1] == "ExecutionFailed"


def test_stop_aborts_a_waiting_execution_and_delete_waits_for_it(live: LiveServer) -> None:
    definition = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    sm = StateMachine.create("napper", definition, client=live.client)
    execution = sm.start({})
    deadline = time.monotonic() + 20
    while "WaitStateEntered" not in [e["type"] for e in execution.history()]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(ResourceInUse, match="running execution"):
        sm.delete()
    execution.stop(error="Operator", cause="not needed today")
    assert execution.wait(timeout_s=20, raise_on_failure=False) is None
    desc = execution.describe()
    assert desc["status"] == "ABORTED" and desc["error"] == "Operator" and desc["cause"] == "not needed today"
    assert execution.history()[-1]["type"] == "ExecutionAborted"
    with pytest.raises(IllegalTransition):
        execution.stop()
    sm.delete()
    with pytest.raises(NotFound):
        Execution("napper", execution.name, client=live.client).describe()


def test_update_changes_new_executions_only(live: LiveServer) -> None:
    slow = {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Say"},
            "Say": {"Type": "Pass", "Result": "old", "End": True},
        },
    }
    sm = StateMachine.create("versions", slow, client=live.client)
    running = sm.start({})
    new = dict(slow, States={**slow["States"], "Say": {"Type": "Pass", "Result": "new", "End": True}})
    sm.update(new)
    assert sm.describe()["revisionId"] == "2"
    assert running.wait(timeout_s=30) == "old"
    assert sm.start({}).wait(timeout_s=30) == "new"


def test_a_sync_training_job_runs_and_a_timed_out_one_is_stopped(live: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "job"
    src.mkdir()
    (src / "train.py").write_text(
        "import sys, time\nprint('acc=0.75', flush=True)\ntime.sleep(float(sys.argv[sys.argv.index('--nap') + 1]))\n"
    )
    uri = live.client.upload_directory(src)

    def train(name: str, nap: int, timeout: int | None = None) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Parameters": {
                "TrainingJobName": name,
                "HyperParameters": {
                    "sagemaker_program": '"train.py"',
                    "sagemaker_submit_directory": f'"{uri}"',
                    "nap": str(nap),
                },
                "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "acc", "Regex": "acc=([0-9.]+)"}]},
            },
            "ResultSelector": {"status.$": "$.TrainingJobStatus", "metrics.$": "$.FinalMetricDataList"},
            "End": True,
        }
        if timeout:
            state["TimeoutSeconds"] = timeout
        return {"StartAt": "Train", "States": {"Train": state}}

    out = StateMachine.create("trains", train("quick-job", 0), client=live.client).start({}).wait(timeout_s=90)
    assert out["status"] == "Completed" and out["metrics"][0]["MetricName"] == "acc"
    slow = StateMachine.create("slow", train("slow-job", 120, timeout=3), client=live.client).start({})
    with pytest.raises(ExecutionFailed, match=r"States\.Timeout"):
        slow.wait(timeout_s=60)
    deadline = time.monotonic() + 60
    while (status := live.client.describe_training_job("slow-job")["TrainingJobStatus"]) not in ("Stopped",):
        assert status in ("InProgress", "Stopping"), status
        assert time.monotonic() < deadline, "the timed-out Task's training job was not stopped"
        time.sleep(0.2)


def test_processing_job_sync_and_a_failed_job_is_states_task_failed(live: LiveServer) -> None:
    def job(name: str, code: str) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName": name,
                "ProcessingResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1}
                },
                "AppSpecification": {"ImageUri": "local", "ContainerEntrypoint": ["python3", "-c", code]},
            },
            "ResultSelector": {"status.$": "$.ProcessingJobStatus"},
        }

    definition = {
        "StartAt": "Prep",
        "States": {
            "Prep": {**job("prep-ok", "print('ok')"), "ResultPath": "$.prep", "Next": "Broken"},
            "Broken": {
                **job("prep-bad", "raise SystemExit(3)"),
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    out = StateMachine.create("procs", definition, client=live.client).start({}).wait(timeout_s=90)
    assert out["prep"] == {"status": "Completed"}
    assert out["error"]["Error"] == "States.TaskFailed"
    cause = json.loads(out["error"]["Cause"])
    assert cause["ProcessingJobName"] == "prep-bad" and cause["ProcessingJobStatus"] == "Failed"
