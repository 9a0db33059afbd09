"""JSON Schema validation of a definition with AWS's language-server schema, with readable messages.

The schema is one big ``oneOf`` per state type, so a raw jsonschema error says "not valid under any of the
given schemas". We pick the branch for the state's own ``Type`` and report that branch's errors instead.
Top-level ``QueryLanguage`` is copied onto each state first, since the schema only looks at the state.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

_SCHEMA = Path(__file__).with_name("schema") / "asl.schema.json"


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(_SCHEMA.read_text()))


def _normalise(machine: Any, language: str) -> Any:
    if not isinstance(machine, dict):
        return machine
    machine = copy.copy(machine)
    language = machine.get("QueryLanguage", language)
    states = machine.get("States")
    if isinstance(states, dict):
        machine["States"] = out = {}
        for name, state in states.items():
            if isinstance(state, dict):
                state = dict(state)
                if language == "JSONata" and "QueryLanguage" not in state:
                    state["QueryLanguage"] = "JSONata"
                lang = state.get("QueryLanguage", language)
                if isinstance(state.get("Branches"), list):
                    state["Branches"] = [_normalise(b, lang) for b in state["Branches"]]
                for key in ("ItemProcessor", "Iterator"):
                    if isinstance(state.get(key), dict):
                        state[key] = _normalise(state[key], lang)
            out[name] = state
    return machine


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "/"


def _leaf_errors(error: jsonschema.ValidationError, instance: Any) -> list[jsonschema.ValidationError]:
    """For a failed ``oneOf``, the errors of the branch meant for this instance's ``Type``."""
    if "is valid under each of" in error.message:
        return []  # the schema's own ambiguity (e.g. a JSONata string matching two branches), not a user error
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    type_name = instance.get("Type") if isinstance(instance, dict) else None

    def about_type(sub: jsonschema.ValidationError) -> bool:
        return (bool(sub.path) and sub.path[-1] == "Type") or (
            sub.validator in ("const", "enum") and (isinstance(sub.instance, str) and sub.instance == type_name)
        )

    candidates = [errs for errs in branches.values() if not any(about_type(e) for e in errs)]
    best = min(
        candidates or list(branches.values()),
        key=lambda errs: (sum(e.validator == "required" for e in errs), len(errs)),
    )
    out: list[jsonschema.ValidationError] = []
    for sub in best:
        out.extend(_leaf_errors(sub, sub.instance))
    return out


def schema_errors(definition: Any) -> list[dict[str, str]]:
    """Schema violations as ``{"path", "message"}`` (JSON Pointer paths like ``/States/Foo/Next``)."""
    normalised = _normalise(definition, "JSONPath")
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(normalised):
        for leaf in _leaf_errors(error, error.instance):
            key = (_pointer(leaf.absolute_path), leaf.message)
            if key not in seen:
                seen.add(key)
                out.append({"path": key[0], "message": f"schema: {leaf.message[:300]}"})
    return out
