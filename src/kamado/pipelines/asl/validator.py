"""Definition validation at create time: the JSON Schema plus semantic checks, every error at once.

Each error is ``{"path": "/States/Foo/Next", "message": "..."}`` where ``path`` is a JSON Pointer into the
definition and the message says what to change. :func:`validate_definition` raises
:class:`~kamado.core.errors.InvalidSpec` (HTTP 400) with the list in ``details``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kamado.core.errors import InvalidSpec
from kamado.pipelines.asl.limits import MAX_DEFINITION_NESTING, MAX_STATE_NAME_CHARS
from kamado.pipelines.asl.schema_check import schema_errors
from kamado.pipelines.asl.validator_checks import (
    add_error,
    check_choice,
    check_jsonata,
    check_jsonpath_fields,
    check_retry_catch,
    check_wait,
)

MAX_DEFINITION_BYTES = 1024 * 1024
STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
JSONPATH_ONLY = ("InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "ItemsPath")
JSONATA_ONLY = ("Arguments", "Output", "Items")

_COMMON = {"Type", "Comment", "QueryLanguage"}
_FLOW = {"Next", "End"}
_IO = {"InputPath", "OutputPath", "Output", "Assign"}
_RESULT = {"Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"}
#: The fields each state type may carry (AWS rejects any other field at create time).
ALLOWED_FIELDS: dict[str, set[str]] = {
    "Task": _COMMON
    | _FLOW
    | _IO
    | _RESULT
    | {
        "Arguments",
        "Resource",
        "Credentials",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
    },
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | {"InputPath", "OutputPath", "Output"},
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON | _FLOW | _IO | _RESULT | {"Arguments", "Branches"},
    "Map": _COMMON
    | _FLOW
    | _IO
    | _RESULT
    | {
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "Items",
        "ItemSelector",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "Label",
    },
}
_MACHINE_FIELDS = {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"}
_SUB_MACHINE_FIELDS = {"StartAt", "States", "Comment", "ProcessorConfig", "QueryLanguage"}

Errors = list[dict[str, str]]


def validate_definition(definition: Any) -> None:
    """Raise ``InvalidSpec`` listing every problem, or return if the definition can run."""
    errors = validation_errors(definition)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidSpec(
            f"Invalid state machine definition: {first['message']} at {first['path']}{more}; fix the listed fields.",
            details=errors,
        )


def validation_errors(definition: Any) -> Errors:
    """Every problem found, schema and semantic, in a stable order (semantic checks first)."""
    if not isinstance(definition, dict):
        return [{"path": "/", "message": "the definition must be a JSON object with StartAt and States"}]
    depth = _nesting(definition)
    if depth > MAX_DEFINITION_NESTING:
        # Checked first and alone: validating a 1,000-deep Parallel would take the server seconds per request.
        message = f"the definition nests more than {MAX_DEFINITION_NESTING} JSON levels deep"
        return [{"path": "/", "message": message + " (flatten nested Parallel/Map states)"}]
    size = len(json.dumps(definition).encode())
    errors: Errors = []
    if size > MAX_DEFINITION_BYTES:
        errors.append({"path": "/", "message": f"the definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES}"})
    language = definition.get("QueryLanguage", "JSONPath")
    if language not in ("JSONPath", "JSONata"):
        errors.append({"path": "/QueryLanguage", "message": "QueryLanguage must be 'JSONPath' or 'JSONata'"})
        language = "JSONPath"
    names: dict[str, str] = {}
    _machine(definition, "", language, errors, names)
    paths = {e["path"] for e in errors}
    for err in schema_errors(definition):
        if not _covered(err, paths):
            errors.append(err)
    return errors


def _nesting(value: Any) -> int:
    """How many objects/arrays deep ``value`` goes (iteratively: the input may be deeper than the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEFINITION_NESTING:
                children = node.values() if isinstance(node, dict) else node
                stack.extend((child, level + 1) for child in children)
    return deepest


def _covered(err: dict[str, str], paths: set[str]) -> bool:
    """Whether a schema error repeats a semantic one (same place, or the property it says is missing)."""
    path = err["path"]
    if any(path.startswith(p) and p != "/" for p in paths):
        return True
    missing = re.search(r"'([^']+)' is a required property", err["message"])
    return missing is not None and f"{path.rstrip('/')}/{missing.group(1)}" in paths


def _machine(machine: Any, base: str, language: str, errors: Errors, names: dict[str, str]) -> None:
    if not isinstance(machine, dict):
        add_error(errors, base, "must be an object with StartAt and States")
        return
    allowed = _MACHINE_FIELDS if not base else _SUB_MACHINE_FIELDS
    for field in machine:
        if field not in allowed:
            add_error(
                errors,
                f"{base}/{field}",
                f"field '{field}' is not supported here; allowed: {', '.join(sorted(allowed))}",
            )
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        add_error(errors, f"{base}/States", "States must be a non-empty object mapping state names to states")
        return
    start = machine.get("StartAt")
    if not isinstance(start, str):
        add_error(errors, f"{base}/StartAt", "StartAt is required: name the first state")
    elif start not in states:
        add_error(
            errors,
            f"{base}/StartAt",
            f"StartAt names '{start}', which is not a state here; use one of {sorted(states)}",
        )
    for name, state in states.items():
        path = f"{base}/States/{name}"
        if name in names:
            add_error(errors, path, f"state name '{name}' is also used at {names[name]}; names must be unique")
        names[name] = path
        if len(name) > MAX_STATE_NAME_CHARS:
            add_error(errors, path, f"state names are at most {MAX_STATE_NAME_CHARS} characters")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
            # They would reach logs, histories and the console as terminal escapes or invisible text.
            add_error(errors, f"{base}/States/{name!r}", "state names must not contain control characters")
        if not isinstance(state, dict):
            add_error(errors, path, "a state must be an object with a Type")
            continue
        _state(name, state, path, states, language, errors, names)
    if isinstance(start, str) and start in states:
        _reachability(start, states, base, errors)


def _targets(state: dict[str, Any]) -> list[str]:
    out = [state["Next"]] if isinstance(state.get("Next"), str) else []
    if state.get("Type") == "Choice":
        out += [r["Next"] for r in state.get("Choices") or [] if isinstance(r, dict) and isinstance(r.get("Next"), str)]
        if isinstance(state.get("Default"), str):
            out.append(state["Default"])
    out += [c["Next"] for c in state.get("Catch") or [] if isinstance(c, dict) and isinstance(c.get("Next"), str)]
    return out


def _reachability(start: str, states: dict[str, Any], base: str, errors: Errors) -> None:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states or not isinstance(states[name], dict):
            continue
        seen.add(name)
        todo.extend(_targets(states[name]))
    terminal = any(
        isinstance(states[n], dict) and (states[n].get("Type") in ("Succeed", "Fail") or states[n].get("End") is True)
        for n in seen
    )
    if not terminal:
        add_error(errors, f"{base}/States", "no terminal state (Succeed, Fail or End: true) is reachable from StartAt")
    for name in states:
        if name not in seen:
            add_error(
                errors, f"{base}/States/{name}", f"state '{name}' is not reachable from StartAt; link it or remove it"
            )


def _state(
    name: str,
    state: dict[str, Any],
    path: str,
    states: dict[str, Any],
    language: str,
    errors: Errors,
    names: dict[str, str],
) -> None:
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        add_error(errors, f"{path}/Type", f"Type must be one of {', '.join(STATE_TYPES)}")
        return
    for field in state:
        if field not in ALLOWED_FIELDS[kind]:
            add_error(errors, f"{path}/{field}", f"field '{field}' is not supported in a {kind} state")
    lang = state.get("QueryLanguage", language)
    if lang not in ("JSONPath", "JSONata"):
        add_error(errors, f"{path}/QueryLanguage", "QueryLanguage must be 'JSONPath' or 'JSONata'")
        return
    if language == "JSONata" and lang == "JSONPath":
        add_error(
            errors, f"{path}/QueryLanguage", "a state cannot switch back to JSONPath when the machine uses JSONata"
        )
    flow = kind not in ("Choice", "Succeed", "Fail")
    if flow:
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            add_error(errors, path, f"a {kind} state needs exactly one of Next or End: true")
    for field, target in [("Next", state.get("Next")), ("Default", state.get("Default"))]:
        if target is not None and target not in states:
            add_error(errors, f"{path}/{field}", f"{field} names '{target}', which is not a state in this scope")
    if lang == "JSONata":
        for field in JSONPATH_ONLY:
            if field in state:
                add_error(errors, f"{path}/{field}", f"{field} is JSONPath-only; in JSONata use Arguments/Output/Items")
        check_jsonata(state, path, errors)
    else:
        for field in JSONATA_ONLY:
            if field in state:
                add_error(
                    errors,
                    f"{path}/{field}",
                    f"{field} needs QueryLanguage JSONata; in JSONPath use Parameters/OutputPath/ItemsPath",
                )
        check_jsonpath_fields(state, path, errors)
    check_retry_catch(state, path, states, errors)
    if kind == "Choice":
        check_choice(state, path, states, lang, errors)
    elif kind == "Wait":
        check_wait(state, path, lang, errors)
    elif kind == "Fail":
        for field in ("Error", "Cause"):
            if field in state and f"{field}Path" in state:
                add_error(errors, path, f"use either {field} or {field}Path, not both")
    elif kind == "Task" and not isinstance(state.get("Resource"), str):
        add_error(errors, f"{path}/Resource", "a Task needs a Resource (the URI of what to run)")
    elif kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            add_error(errors, f"{path}/Branches", "a Parallel state needs a non-empty Branches list")
        else:
            for i, branch in enumerate(branches):
                _machine(branch, f"{path}/Branches/{i}", lang, errors, names)
    elif kind == "Map":
        if "ItemProcessor" in state and "Iterator" in state:
            add_error(errors, path, "use ItemProcessor or its legacy name Iterator, not both")
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        if key not in state:
            add_error(errors, path, "a Map state needs an ItemProcessor")
        else:
            _machine(state[key], f"{path}/{key}", lang, errors, names)
