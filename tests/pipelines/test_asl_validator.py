"""The definition validator returns every problem at once, each with a JSON Pointer and a fix."""

from __future__ import annotations

from typing import Any

import pytest

from kamado.core.errors import InvalidSpec
from kamado.pipelines.asl import validate_definition, validation_errors


def _paths(definition: Any) -> dict[str, str]:
    return {e["path"]: e["message"] for e in validation_errors(definition)}


def test_a_valid_definition_has_no_errors() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Parameters": {"s.$": "States.Format('{} {}', $.a, $$.Execution.Id)"}, "Next": "B"},
            "B": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.s", "StringMatches": "x*", "Next": "C"}],
                "Default": "C",
            },
            "C": {"Type": "Succeed"},
        },
    }
    assert validation_errors(definition) == []
    validate_definition(definition)


def test_all_errors_are_reported_with_their_paths() -> None:
    definition = {
        "StartAt": "Missing",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Wait", "Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z", "End": True},
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "NumericEquals": "one", "Next": "A"}],
            },
            "D": {"Type": "Pass", "Parameters": {"x.$": "States.ArrayRange(1, 2)"}, "End": True},
            "E": {"Type": "Pass", "InputPath": "$.[", "End": True},
            "F": {"Type": "Task", "Resource": "fn", "Retry": [{"ErrorEquals": ["States.ALL", "X"]}], "End": True},
        },
    }
    errors = _paths(definition)
    assert "not a state" in errors["/StartAt"]
    assert "Nowhere" in errors["/States/A/Next"]
    assert "exactly one of Seconds" in errors["/States/B"]
    assert errors["/States/C/Choices/0/NumericEquals"] == "must be a number"
    assert "States.ArrayRange takes 3 argument(s), got 2" in errors["/States/D/Parameters/x.$"]
    assert "invalid JSONPath" in errors["/States/E/InputPath"]
    assert "States.ALL must be alone" in errors["/States/F/Retry/0/ErrorEquals"]


def test_nested_machines_are_checked_recursively_with_full_paths() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}},
                "End": True,
            },
        },
    }
    errors = _paths(definition)
    assert "Y" in errors["/States/M/ItemProcessor/States/X/Next"]
    assert "no terminal state" in errors["/States/M/ItemProcessor/States"]


def test_unreachable_states_and_duplicate_names_are_errors() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}],
                "End": True,
            },
            "Lonely": {"Type": "Succeed"},
        },
    }
    errors = _paths(definition)
    assert "not reachable" in errors["/States/Lonely"]
    assert "also used at /States/A" in errors["/States/A/Branches/0/States/A"]


def test_query_language_fields_are_checked() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "OutputPath": "$.x", "Next": "B"},
            "B": {"Type": "Pass", "Output": "{% $states.input.( %}", "Next": "C"},
            "C": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True},
        },
    }
    errors = _paths(definition)
    assert "JSONPath-only" in errors["/States/A/OutputPath"]
    assert "invalid JSONata expression" in errors["/States/B/Output"]
    assert "cannot switch back" in errors["/States/C/QueryLanguage"]
    jsonpath = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"a": 1}, "End": True}}}
    assert "needs QueryLanguage JSONata" in _paths(jsonpath)["/States/A/Output"]


def test_wait_timestamps_must_be_rfc3339() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "2016-12-05 21:29:29Z", "End": True}}}
    assert _paths(definition)["/States/W/Timestamp"] == "String does not match RFC3339 timestamp"


def test_validate_definition_raises_a_400_listing_every_error() -> None:
    with pytest.raises(InvalidSpec) as info:
        validate_definition({"StartAt": "A", "States": {"A": {"Type": "Pass"}, "B": {"Type": "Bogus"}}})
    err = info.value
    assert err.http_status == 400
    assert isinstance(err.details, list) and len(err.details) >= 2
    assert {"path", "message"} <= set(err.details[0])
    assert "/States/" in err.message
    assert validation_errors("not a dict") == [
        {"path": "/", "message": "the definition must be a JSON object with StartAt and States"}
    ]


def test_unknown_fields_are_rejected_where_aws_rejects_them() -> None:
    definition = {
        "StartAt": "A",
        "Bogus": 1,
        "States": {"A": {"Type": "Succeed", "Next": "A", "Resultt": 1}},
    }
    errors = _paths(definition)
    assert errors["/Bogus"].startswith("field 'Bogus' is not supported here")
    assert errors["/States/A/Next"] == "field 'Next' is not supported in a Succeed state"
    assert errors["/States/A/Resultt"] == "field 'Resultt' is not supported in a Succeed state"


def test_a_missing_task_resource_is_reported_once() -> None:
    errors = validation_errors({"StartAt": "T", "States": {"T": {"Type": "Task", "End": True}}})
    assert errors == [{"path": "/States/T/Resource", "message": "a Task needs a Resource (the URI of what to run)"}]
