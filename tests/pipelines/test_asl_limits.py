"""Runtime caps: payload size, history length, ArrayRange size and Map concurrency fail clearly."""

from __future__ import annotations

from typing import Any

from kamado.pipelines.asl import AslLimits, Interpreter, new_execution
from kamado.pipelines.asl.driver import run_local


def _pass(**fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "End": True, **fields}},
    }


def test_an_oversized_state_output_fails_with_data_limit_exceeded_and_is_not_caught() -> None:
    big = "x" * 300_000
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "fn",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    result = run_local(definition, {}, tasks=lambda r, p: big)
    assert result.status == "FAILED" and result.error == "States.DataLimitExceeded"
    assert "262144" in (result.cause or "")
    small = run_local(definition, {}, tasks=lambda r, p: big, limits=AslLimits(max_payload_bytes=1_000_000))
    assert small.status == "SUCCEEDED"


def test_array_range_is_capped() -> None:
    definition = _pass(Parameters={"r.$": "States.ArrayRange(1, 5000, 1)"})
    result = run_local(definition, {})
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert "limit is 1000" in (result.cause or "")
    ok = run_local(definition, {}, limits=AslLimits(max_array_range_items=10_000))
    assert ok.status == "SUCCEEDED" and len(ok.output["r"]) == 5000


def test_history_length_is_capped() -> None:
    definition = {
        "StartAt": "Loop",
        "States": {
            "Loop": {"Type": "Pass", "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stop", "BooleanEquals": True, "Next": "End"}],
                "Default": "Loop",
            },
            "End": {"Type": "Succeed"},
        },
    }
    result = run_local(definition, {"stop": False}, limits=AslLimits(max_history_events=50))
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert "50 events" in (result.cause or "")


def test_map_concurrency_never_exceeds_the_cap() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": "fn", "End": True}},
                },
                "End": True,
            }
        },
    }
    interp = Interpreter(definition, limits=AslLimits(max_map_concurrency=4))
    _, actions = interp.step(new_execution(list(range(100))), {"type": "ExecutionStarted", "now": 0.0})
    assert sum(a["type"] == "InvokeTask" for a in actions) == 4


def test_unsupported_item_reader_is_refused_clearly() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    result = run_local(definition, {})
    assert result.status == "FAILED" and result.error == "States.ItemReaderFailed"
    assert "not supported by kamado yet" in (result.cause or "")


def test_an_oversized_execution_input_fails_at_start() -> None:
    result = run_local(_pass(), "x" * 300_000)
    assert result.status == "FAILED" and result.error == "States.DataLimitExceeded"
    assert result.states_entered() == []
