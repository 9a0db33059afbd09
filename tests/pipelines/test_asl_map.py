"""Map specifics the corpus covers thinly: batching, tolerated failures, isolation of DISTRIBUTED children."""

from __future__ import annotations

from typing import Any

from kamado.pipelines.asl.driver import run_local


def _distributed(processor_states: dict[str, Any], start: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": start,
                    "States": processor_states,
                },
                "End": True,
                **fields,
            }
        },
    }


FAIL_ODD = {
    "C": {
        "Type": "Choice",
        "Choices": [{"Variable": "$.n", "NumericGreaterThan": 2, "Next": "Boom"}],
        "Default": "Ok",
    },
    "Boom": {"Type": "Fail", "Error": "TooBig", "Cause": "n > 2"},
    "Ok": {"Type": "Pass", "End": True},
}


def test_item_batcher_groups_items_with_the_batch_input() -> None:
    definition = _distributed(
        {"P": {"Type": "Pass", "End": True}},
        "P",
        ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
    )
    result = run_local(definition, {"items": [1, 2, 3], "run": "r1"})
    assert result.output == [
        {"Items": [1, 2], "BatchInput": {"run": "r1"}},
        {"Items": [3], "BatchInput": {"run": "r1"}},
    ]
    assert run_local(definition, {"items": [], "run": "r1"}).output == []


def test_tolerated_failures_keep_the_map_going_until_the_threshold() -> None:
    items = {"items": [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]}
    strict = run_local(_distributed(FAIL_ODD, "C"), items)
    assert strict.status == "FAILED" and strict.error == "States.ExceedToleratedFailureThreshold"

    tolerant = run_local(_distributed(FAIL_ODD, "C", ToleratedFailureCount=2), items)
    assert tolerant.status == "SUCCEEDED"
    assert tolerant.output == [
        {"n": 1},
        {"n": 2},
        {"Error": "TooBig", "Cause": "n > 2"},
        {"Error": "TooBig", "Cause": "n > 2"},
    ]
    by_percent = run_local(_distributed(FAIL_ODD, "C", ToleratedFailurePercentage=25), items)
    assert by_percent.status == "FAILED" and by_percent.error == "States.ExceedToleratedFailureThreshold"


def test_distributed_children_have_their_own_history_and_no_outer_variables() -> None:
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"secret": 42}, "Next": "M"},
            **_distributed({"Read": {"Type": "Pass", "Parameters": {"v.$": "$secret"}, "End": True}}, "Read")["States"],
        },
    }
    definition["States"]["M"]["ItemsPath"] = "$.items"
    result = run_local(definition, {"items": [1]})
    assert result.status == "FAILED" and result.error == "States.ExceedToleratedFailureThreshold"
    child_events = [e for e in result.history if e["execution"] is not None]
    assert [e["type"] for e in child_events] == ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]
    assert [e["id"] for e in child_events] == [1, 2, 3]  # numbered in the child's own history
    failed = child_events[-1]["details"]
    assert failed["error"] == "States.Runtime" and "$secret" in failed["cause"]
    assert "Read" not in result.states_entered()


def test_inline_iterations_read_outer_variables_and_keep_order() -> None:
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"factor": 10}, "Next": "M"},
            "M": {
                "Type": "Map",
                "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                "ItemProcessor": {
                    "StartAt": "Use",
                    "States": {
                        "Use": {
                            "Type": "Pass",
                            "Parameters": {"i.$": "$.i", "f.$": "$factor", "v.$": "$.v"},
                            "End": True,
                        }
                    },
                },
                "End": True,
            },
        },
    }
    result = run_local(definition, ["a", "b"])
    assert result.output == [{"i": 0, "f": 10, "v": "a"}, {"i": 1, "f": 10, "v": "b"}]
