"""The Python pipeline DSL compiles to the ASL a hand-written definition would be."""

from __future__ import annotations

import pytest

from kamado.workflow import (
    Choice,
    Fail,
    FunctionTask,
    Map,
    Parallel,
    Pass,
    Succeed,
    TrainingJob,
    UpdateEndpoint,
    Var,
    Wait,
    Workflow,
)


def test_chain_choice_retry_and_catch_compile_to_asl() -> None:
    train = TrainingJob("Train", {"TrainingJobName.$": "$.job"}, result_path="$.train")
    score = FunctionTask(
        "Score", "evaluate", result_selector={"accuracy.$": "$.Payload.accuracy"}, result_path="$.score"
    ).retry(["RuntimeError"], interval_s=2, max_attempts=4)
    deploy = UpdateEndpoint("Deploy", {"EndpointName": "prod", "EndpointConfigName.$": "$.config"}, sync=True)
    keep = Succeed("Keep")
    failed = Fail("Broken", error="ScoreFailed", cause="the evaluation function failed")
    score.catch(["States.ALL"], failed)
    gate = Choice("Better?").when((Var("$.score.accuracy") > 0.9) & Var("$.force").is_present(False), deploy)
    gate.otherwise(keep)
    wf = Workflow("weekly", train >> score >> gate, comment="retrain", timeout_s=3600)
    asl = wf.definition()
    assert asl["StartAt"] == "Train" and asl["Comment"] == "retrain" and asl["TimeoutSeconds"] == 3600
    states = asl["States"]
    assert states["Train"] == {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {"TrainingJobName.$": "$.job"},
        "ResultPath": "$.train",
        "Next": "Score",
    }
    assert states["Score"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert states["Score"]["Parameters"] == {"FunctionName": "evaluate", "Payload.$": "$"}
    assert states["Score"]["Retry"] == [
        {"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0}
    ]
    assert states["Score"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Broken"}]
    assert states["Better?"] == {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.score.accuracy", "NumericGreaterThan": 0.9},
                    {"Variable": "$.force", "IsPresent": False},
                ],
                "Next": "Deploy",
            }
        ],
        "Default": "Keep",
    }
    assert states["Deploy"]["Resource"] == "arn:aws:states:::sagemaker:updateEndpoint.sync"
    assert states["Deploy"]["End"] is True
    assert states["Keep"] == {"Type": "Succeed"}
    assert states["Broken"] == {"Type": "Fail", "Error": "ScoreFailed", "Cause": "the evaluation function failed"}


def test_map_parallel_wait_and_comparisons() -> None:
    inner = Pass("Square", parameters={"v.$": "States.MathAdd($.x, $.x)"})
    fan = Map("Each", inner, items_path="$.items", max_concurrency=4)
    both = Parallel("Both", [Pass("L", result=1), Wait("Nap", seconds=1) >> Pass("R", result=2)])
    asl = Workflow("shapes", fan >> both).definition()
    each = asl["States"]["Each"]
    assert each["ItemsPath"] == "$.items" and each["MaxConcurrency"] == 4
    assert each["ItemProcessor"]["StartAt"] == "Square" and each["ItemProcessor"]["States"]["Square"]["End"]
    branches = asl["States"]["Both"]["Branches"]
    assert branches[1]["States"]["Nap"] == {"Type": "Wait", "Seconds": 1, "Next": "R"}
    assert (Var("$.s") == "x").rule == {"Variable": "$.s", "StringEquals": "x"}
    assert (Var("$.b") == True).rule == {"Variable": "$.b", "BooleanEquals": True}  # noqa: E712
    assert (Var("$.n") != 3).rule == {"Not": {"Variable": "$.n", "NumericEquals": 3}}
    assert (~(Var("$.a") <= 1) | Var("$.t").matches("log-*")).rule == {
        "Or": [{"Not": {"Variable": "$.a", "NumericLessThanEquals": 1}}, {"Variable": "$.t", "StringMatches": "log-*"}]
    }


def test_mistakes_are_caught_when_building() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Wait("W")
    with pytest.raises(ValueError, match="must start with"):
        Var("score")
    with pytest.raises(TypeError, match="not a Python bool"):
        bool(Var("$.a") > 1)
    with pytest.raises(TypeError, match="unknown arguments"):
        Pass("P", resultpath="$.x")
    with pytest.raises(ValueError, match="cannot be followed"):
        Succeed("S") >> Pass("P")
    with pytest.raises(ValueError, match="unique"):
        Workflow("dup", Pass("A") >> Pass("A")).definition()
    with pytest.raises(ValueError, match="at least one"):
        Workflow("c", Choice("C")).definition()
