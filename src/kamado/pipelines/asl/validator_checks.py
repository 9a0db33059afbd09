"""Field-level checks of one state for :mod:`.validator`: paths, templates, JSONata, Retry/Catch, Choice, Wait.

Each function appends ``{"path", "message"}`` entries to the list it is given and never raises.
"""

from __future__ import annotations

from typing import Any

from kamado.pipelines.asl import jsonata_eval
from kamado.pipelines.asl.choice import OPERATORS, parse_timestamp
from kamado.pipelines.asl.intrinsics import IntrinsicSyntaxError, is_intrinsic, parse_intrinsic
from kamado.pipelines.asl.jsonpath import JsonPathSyntaxError, compile_path
from kamado.pipelines.asl.payload import split_root

Errors = list[dict[str, str]]
_PATH_FIELDS = (
    "InputPath", "OutputPath", "ItemsPath", "SecondsPath", "TimestampPath", "TimeoutSecondsPath",
    "HeartbeatSecondsPath", "MaxConcurrencyPath", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath",
)  # fmt: skip
_TEMPLATE_FIELDS = ("Parameters", "ResultSelector", "ItemSelector", "Assign")


def add_error(errors: Errors, path: str, message: str) -> None:
    errors.append({"path": path or "/", "message": message})


def check_path(value: Any, path: str, errors: Errors, *, reference: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        add_error(errors, path, "must be a JSONPath string starting with '$'")
        return
    try:
        _, rest, _ = split_root(value)
        compiled = compile_path(rest)
    except JsonPathSyntaxError as exc:
        add_error(errors, path, f"invalid JSONPath: {exc}")
        return
    if reference and not compiled.is_reference():
        add_error(errors, path, "must be a reference path (names and indexes only: no wildcards, slices or filters)")


def check_template(value: Any, path: str, errors: Errors) -> None:
    if isinstance(value, dict):
        for key, val in value.items():
            if key.endswith(".$"):
                check_dollar_value(val, f"{path}/{key}", errors)
            else:
                check_template(val, f"{path}/{key}", errors)
    elif isinstance(value, list):
        for i, val in enumerate(value):
            check_template(val, f"{path}/{i}", errors)


def check_dollar_value(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, str):
        add_error(errors, path, "the value of a '.$' field must be a JSONPath or an intrinsic function call")
    elif is_intrinsic(value):
        try:
            parse_intrinsic(value)
        except IntrinsicSyntaxError as exc:
            add_error(errors, path, f"invalid intrinsic function call: {exc}")
    else:
        check_path(value, path, errors)


def check_jsonpath_fields(state: dict[str, Any], path: str, errors: Errors) -> None:
    for field in _PATH_FIELDS:
        if field in state:
            check_path(state[field], f"{path}/{field}", errors)
    if "ResultPath" in state:
        check_path(state["ResultPath"], f"{path}/ResultPath", errors, reference=True)
    for field in _TEMPLATE_FIELDS:
        if field in state:
            check_template(state[field], f"{path}/{field}", errors)
    for field in ("ErrorPath", "CausePath"):
        if field in state:
            check_dollar_value(state[field], f"{path}/{field}", errors)


def check_jsonata(value: Any, path: str, errors: Errors) -> None:
    if isinstance(value, str) and jsonata_eval.is_expression(value):
        try:
            jsonata_eval.compile_expression(jsonata_eval.expression_text(value))
        except jsonata_eval.JsonataSyntaxError as exc:
            add_error(errors, path, str(exc))
    elif isinstance(value, dict):
        for key, val in value.items():
            if key not in ("ItemProcessor", "Iterator", "Branches"):
                check_jsonata(val, f"{path}/{key}", errors)
    elif isinstance(value, list):
        for i, val in enumerate(value):
            check_jsonata(val, f"{path}/{i}", errors)


def check_retry_catch(state: dict[str, Any], path: str, states: dict[str, Any], errors: Errors) -> None:
    for field in ("Retry", "Catch"):
        entries = state.get(field)
        if entries is None:
            continue
        if state.get("Type") not in ("Task", "Parallel", "Map"):
            add_error(errors, f"{path}/{field}", f"{field} is only allowed on Task, Parallel and Map states")
            continue
        if not isinstance(entries, list):
            add_error(errors, f"{path}/{field}", f"{field} must be a list")
            continue
        for i, entry in enumerate(entries):
            p = f"{path}/{field}/{i}"
            if not isinstance(entry, dict):
                add_error(errors, p, "must be an object with ErrorEquals")
                continue
            names = entry.get("ErrorEquals")
            if not isinstance(names, list) or not names:
                add_error(errors, f"{p}/ErrorEquals", "ErrorEquals must be a non-empty list of error names")
            elif "States.ALL" in names and (len(names) > 1 or i != len(entries) - 1):
                add_error(errors, f"{p}/ErrorEquals", "States.ALL must be alone in ErrorEquals and in the last entry")
            if field == "Catch" and entry.get("Next") not in states:
                add_error(errors, f"{p}/Next", f"Next names '{entry.get('Next')}', which is not a state in this scope")
            if field == "Retry":
                if entry.get("BackoffRate", 2.0) < 1.0:
                    add_error(errors, f"{p}/BackoffRate", "BackoffRate must be at least 1.0")
                if entry.get("MaxAttempts", 3) < 0:
                    add_error(errors, f"{p}/MaxAttempts", "MaxAttempts must be 0 or more")
                if entry.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
                    add_error(errors, f"{p}/JitterStrategy", "JitterStrategy must be NONE or FULL")


def check_choice(state: dict[str, Any], path: str, states: dict[str, Any], lang: str, errors: Errors) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        add_error(errors, f"{path}/Choices", "a Choice state needs a non-empty Choices list")
        return
    for i, rule in enumerate(choices):
        p = f"{path}/Choices/{i}"
        if not isinstance(rule, dict):
            add_error(errors, p, "a choice rule must be an object")
            continue
        if rule.get("Next") not in states:
            add_error(errors, f"{p}/Next", f"Next names '{rule.get('Next')}', which is not a state in this scope")
        if lang == "JSONata":
            if "Condition" not in rule:
                add_error(errors, p, "a JSONata choice rule needs a Condition")
        else:
            check_rule(rule, p, errors)


def check_rule(rule: dict[str, Any], path: str, errors: Errors) -> None:
    if "And" in rule or "Or" in rule:
        key = "And" if "And" in rule else "Or"
        if not isinstance(rule[key], list) or not rule[key]:
            add_error(errors, f"{path}/{key}", f"{key} must be a non-empty list of rules")
            return
        for i, sub in enumerate(rule[key]):
            check_rule(sub, f"{path}/{key}/{i}", errors) if isinstance(sub, dict) else add_error(
                errors, f"{path}/{key}/{i}", "must be a rule object"
            )
        return
    if "Not" in rule:
        if isinstance(rule["Not"], dict):
            check_rule(rule["Not"], f"{path}/Not", errors)
        else:
            add_error(errors, f"{path}/Not", "Not must be one rule object")
        return
    ops = [k for k in rule if k in OPERATORS]
    if len(ops) != 1:
        add_error(errors, path, f"a rule needs exactly one comparison operator (found {ops or 'none'})")
        return
    if "Variable" not in rule:
        add_error(errors, f"{path}/Variable", "a comparison rule needs a Variable (a reference path)")
    else:
        check_path(rule["Variable"], f"{path}/Variable", errors)
    op, value = ops[0], rule[ops[0]]
    p = f"{path}/{op}"
    if op.endswith("Path"):
        check_path(value, p, errors)
    elif op.startswith("Is"):
        bad_type(value, bool, p, "a boolean", errors)
    elif op.startswith("String"):
        bad_type(value, str, p, "a string", errors)
    elif op.startswith("Numeric") and (isinstance(value, bool) or not isinstance(value, int | float)):
        add_error(errors, p, "must be a number")
    elif op.startswith("Boolean"):
        bad_type(value, bool, p, "a boolean", errors)
    elif op.startswith("Timestamp") and parse_timestamp(value) is None:
        add_error(errors, p, "String does not match RFC3339 timestamp")


def bad_type(value: Any, kind: type, path: str, what: str, errors: Errors) -> None:
    if not isinstance(value, kind):
        add_error(errors, path, f"must be {what}")


def check_wait(state: dict[str, Any], path: str, lang: str, errors: Errors) -> None:
    given = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in state]
    if len(given) != 1:
        add_error(errors, path, "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath")
    stamp = state.get("Timestamp")
    expression = lang == "JSONata" and jsonata_eval.is_expression(stamp)
    if stamp is not None and not expression and parse_timestamp(stamp) is None:
        add_error(errors, f"{path}/Timestamp", "String does not match RFC3339 timestamp")
    seconds = state.get("Seconds")
    expression = lang == "JSONata" and jsonata_eval.is_expression(seconds)
    if (
        seconds is not None
        and not expression
        and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0)
    ):
        add_error(errors, f"{path}/Seconds", "Seconds must be a non-negative integer")
