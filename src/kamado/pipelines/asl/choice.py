"""Choice rules in JSONPath mode: every comparison operator, ``And``/``Or``/``Not``, with AWS's type rules.

A comparison against a value of the wrong type is simply false (no error); timestamps must be RFC 3339.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from kamado.pipelines.asl.errors import RUNTIME, AslError
from kamado.pipelines.asl.jsonpath import JsonPathSyntaxError, PathNotFound
from kamado.pipelines.asl.payload import Scope, VariableNotFound, read_path

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
)

COMPARATORS = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
TYPE_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
OPERATORS = frozenset(
    [f"{family}{cmp}" for family in ("String", "Numeric", "Timestamp") for cmp in COMPARATORS]
    + [f"{family}{cmp}Path" for family in ("String", "Numeric", "Timestamp") for cmp in COMPARATORS]
    + ["BooleanEquals", "BooleanEqualsPath", "StringMatches", *TYPE_TESTS]
)


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 date-time (with a zone), or ``None`` if ``value`` is not one."""
    if not isinstance(value, str):
        return None
    m = _TS.match(value)
    if not m:
        return None
    try:
        frac = (m.group(7) or ".0")[1:7].ljust(6, "0")
        zone = m.group(8).replace("Z", "+00:00")
        text = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}.{frac}{zone}"
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compare(kind: str, a: Any, b: Any) -> bool:
    if kind == "Equals":
        return bool(a == b)
    if kind == "LessThan":
        return bool(a < b)
    if kind == "GreaterThan":
        return bool(a > b)
    if kind == "LessThanEquals":
        return bool(a <= b)
    return bool(a >= b)


def _wildcard_match(pattern: str, text: str) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "*" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, text, re.DOTALL) is not None


def evaluate_rule(rule: dict[str, Any], scope: Scope, value: Any) -> bool:
    """Whether ``rule`` matches; ``value`` is the state's effective input (after InputPath)."""
    if "And" in rule:
        return all(evaluate_rule(r, scope, value) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, scope, value) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], scope, value)
    variable = rule.get("Variable")
    op = next((k for k in rule if k in OPERATORS), None)
    if op is None or not isinstance(variable, str):
        raise AslError(RUNTIME, f"{scope.prefix()}Choice rule has no Variable or no comparison operator.")
    present = True
    try:
        actual = read_path(variable, scope, value, use_value=True)
    except (PathNotFound, VariableNotFound, JsonPathSyntaxError):
        present, actual = False, None
    expected = rule[op]
    if op == "IsPresent":
        return present is bool(expected)
    if not present:
        raise AslError(
            RUNTIME,
            f"{scope.prefix()}Invalid path '{variable}': The choice state's condition path references an "
            "invalid value.",
        )
    if op.startswith("Is"):
        checks = {
            "IsNull": actual is None,
            "IsNumeric": _is_number(actual),
            "IsString": isinstance(actual, str),
            "IsBoolean": isinstance(actual, bool),
            "IsTimestamp": parse_timestamp(actual) is not None,
        }
        return checks[op] is bool(expected)
    if op.endswith("Path"):
        try:
            expected = read_path(expected, scope, value, use_value=True)
        except (PathNotFound, VariableNotFound, JsonPathSyntaxError):
            raise AslError(
                RUNTIME,
                f"{scope.prefix()}Invalid path '{rule[op]}': The choice state's comparison path references an "
                "invalid value.",
            ) from None
        op = op[:-4]
    if op == "StringMatches":
        return isinstance(actual, str) and isinstance(expected, str) and _wildcard_match(expected, actual)
    if op == "BooleanEquals":
        return isinstance(actual, bool) and isinstance(expected, bool) and actual is expected
    for family in ("String", "Numeric", "Timestamp"):
        if op.startswith(family):
            cmp = op[len(family) :]
            if family == "String":
                return isinstance(actual, str) and isinstance(expected, str) and _compare(cmp, actual, expected)
            if family == "Numeric":
                return _is_number(actual) and _is_number(expected) and _compare(cmp, actual, expected)
            a, b = parse_timestamp(actual), parse_timestamp(expected)
            return a is not None and b is not None and _compare(cmp, a, b)
    raise AslError(RUNTIME, f"{scope.prefix()}Unknown Choice operator {op!r}.")
