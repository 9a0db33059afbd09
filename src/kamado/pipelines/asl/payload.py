"""JSONPath-mode data access: resolve ``$``/``$$``/``$var`` paths and evaluate ``.$`` payload templates.

A :class:`Scope` bundles what one state evaluation can see (input, context object, variables), so the same
code serves ``Parameters``, ``ResultSelector``, ``ItemSelector``, ``Assign`` and Fail's ``*Path`` fields.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kamado.pipelines.asl.errors import RUNTIME, AslError
from kamado.pipelines.asl.intrinsics import IntrinsicEnv, evaluate_intrinsic, is_intrinsic, parse_intrinsic
from kamado.pipelines.asl.jsonpath import JsonPathSyntaxError, PathNotFound, compile_path

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class VariableNotFound(LookupError):
    pass


@dataclass
class Scope:
    """The values a JSONPath-mode expression can read while one state runs."""

    input: Any
    context: dict[str, Any]
    lookup_var: Callable[[str], Any]
    rng: random.Random
    state: str
    entered: int
    max_array_range: int = 1000

    def prefix(self) -> str:
        return f"An error occurred while executing the state '{self.state}' (entered at the event id #{self.entered}). "


def split_root(expr: str) -> tuple[str, str, str | None]:
    """``(root kind, path from '$', variable name)`` for ``$...``, ``$$...`` or ``$name...``."""
    if expr.startswith("$$"):
        return "context", "$" + expr[2:], None
    m = _VAR.match(expr)
    if m:
        return "var", "$" + expr[m.end() :], m.group(1)
    return "input", expr, None


def read_path(expr: str, scope: Scope, value: Any | None = None, *, use_value: bool = False) -> Any:
    """Read one path; raises PathNotFound / VariableNotFound / JsonPathSyntaxError."""
    kind, path, name = split_root(expr)
    root: Any
    if kind == "context":
        root = scope.context
    elif kind == "var":
        assert name is not None
        root = scope.lookup_var(name)
    else:
        root = value if use_value else scope.input
    return compile_path(path).get(root)


def evaluate_value(expr: str, scope: Scope, field: str) -> Any:
    """The value of a ``.$`` field: a path or an intrinsic call."""
    if is_intrinsic(expr):
        env = IntrinsicEnv(resolve=lambda p: _read_or_fail(p, scope, field), rng=scope.rng)
        env.max_array_range = scope.max_array_range
        try:
            return evaluate_intrinsic(parse_intrinsic(expr), env)
        except AslError as exc:
            if exc.error == RUNTIME and exc.cause and not exc.cause.startswith("An error occurred"):
                raise AslError(RUNTIME, scope.prefix() + exc.cause) from None
            raise
    return _read_or_fail(expr, scope, field)


def _read_or_fail(expr: str, scope: Scope, field: str) -> Any:
    try:
        return read_path(expr, scope)
    except (PathNotFound, VariableNotFound, JsonPathSyntaxError):
        kind, _, _ = split_root(expr)
        source = scope.context if kind == "context" else scope.input
        raise AslError(
            RUNTIME,
            f"{scope.prefix()}The JSONPath '{expr}' specified for the field '{field}' could not be found in the "
            f"input '{dumps(source)}'",
        ) from None


def evaluate_template(template: Any, scope: Scope) -> Any:
    """A payload template: keys ending in ``.$`` take the value of their path/intrinsic, recursively."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, val in template.items():
            if key.endswith(".$") and isinstance(val, str):
                out[key[:-2]] = evaluate_value(val, scope, key)
            else:
                out[key] = evaluate_template(val, scope)
        return out
    if isinstance(template, list):
        return [evaluate_template(v, scope) for v in template]
    return template


def apply_input_path(path: str | None, value: Any, scope: Scope, field: str = "InputPath") -> Any:
    """InputPath/OutputPath: ``None`` gives ``{}``; a path that matches nothing is ``States.Runtime``."""
    if path is None:
        return {}
    if path == "$":
        return value
    try:
        return read_path(path, scope, value, use_value=True)
    except (PathNotFound, VariableNotFound):
        kind, p, _ = split_root(path)
        try:
            shown = _aws_repr(p) if kind == "input" else path
        except JsonPathSyntaxError:
            shown = path
        raise AslError(RUNTIME, f"{scope.prefix()}Invalid path '{path}' : No results for path: {shown}") from None


def _aws_repr(path: str) -> str:
    from kamado.pipelines.asl.jsonpath import aws_path_repr

    return aws_path_repr(compile_path(path))


def dumps(value: Any) -> str:
    """Compact JSON the way AWS prints values in causes and event details."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
