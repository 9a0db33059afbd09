"""JSONata mode: compile ``{% ... %}`` expressions once, evaluate them with ``$states`` and variables bound.

Uses the pure-Python ``jsonata-python`` engine and adds Step Functions' extra functions (``$partition``,
``$range``, ``$hash``, ``$random``, ``$uuid``, ``$parse``). ``$random``/``$uuid`` draw from the RNG the
interpreter passes in, seeded from the execution, and ``$now``/``$millis`` read the event's clock, so
replays give the same values. Failures become
``States.QueryEvaluationError`` with AWS's cause wording.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import jsonata
from jsonata import utils as jutils

from kamado.pipelines.asl.errors import QUERY_EVALUATION_ERROR, AslError

_NULL = jutils.Utils.NULL_VALUE
_LOCAL = threading.local()


class JsonataSyntaxError(ValueError):
    """The expression does not parse."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}") and len(value) >= 4


def expression_text(value: str) -> str:
    return value[2:-2].strip()


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str) -> jsonata.Jsonata:
    try:
        expr = jsonata.Jsonata(text)
    except Exception as exc:  # the engine raises its own exception types for syntax errors
        raise JsonataSyntaxError(f"invalid JSONata expression {text!r}: {exc}") from None
    expr.set_output_convert_nulls(False)
    for name, fn in _EXTRAS.items():
        expr.register_lambda(name, fn)
    return expr


def to_jsonata(value: Any) -> Any:
    """JSON ``null`` is ``None`` in Python but *undefined* to the engine; mark real nulls."""
    if value is None:
        return _NULL
    if isinstance(value, dict):
        return {k: to_jsonata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonata(v) for v in value]
    return value


_UNSUPPORTED = object()


def from_jsonata(value: Any) -> Any:
    if value is _NULL:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # JSONata numbers are doubles; AWS prints integral ones as integers
    if isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, dict):
        return {k: from_jsonata(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [from_jsonata(v) for v in value if v is not None]
    return _UNSUPPORTED


def evaluate(
    text: str,
    *,
    bindings: Mapping[str, Any],
    field: str,
    state: str,
    entered: int,
    rng: random.Random,
    now: float = 0.0,
) -> Any:
    """Evaluate ``text`` (without the ``{% %}``); ``field`` names it in errors, e.g. ``Output/result``."""
    prefix = f"An error occurred while executing the state '{state}' (entered at the event id #{entered}). "
    expr = compile_expression(text)
    _LOCAL.rng = rng
    _LOCAL.now = now
    try:
        raw = expr.evaluate(None, {k: to_jsonata(v) for k, v in bindings.items()})
    except AslError:
        raise
    except Exception as exc:
        code = getattr(exc, "error", None)
        message = getattr(exc, "message", None) or str(exc)
        detail = f"{code}: {message}" if code else message
        raise AslError(
            QUERY_EVALUATION_ERROR,
            f"{prefix}The JSONata expression '{text}' specified for the field '{field}' "
            f"threw an error during evaluation. {detail}",
        ) from None
    if raw is None:
        raise AslError(
            QUERY_EVALUATION_ERROR,
            f"{prefix}The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined).",
        )
    if (
        isinstance(raw, list)
        and getattr(raw, "sequence", False)
        and len(raw) == 1
        and not getattr(raw, "keep_singleton", False)
    ):
        raw = raw[0]
    value = from_jsonata(raw)
    if value is _UNSUPPORTED or _contains_unsupported(value):
        raise AslError(
            QUERY_EVALUATION_ERROR,
            f"{prefix}The JSONata expression '{text}' specified for the field '{field}' "
            "returned an unsupported result type.",
        )
    return value


def _contains_unsupported(value: Any) -> bool:
    if value is _UNSUPPORTED:
        return True
    if isinstance(value, dict):
        return any(_contains_unsupported(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unsupported(v) for v in value)
    return False


# ------------------------------------------------------------------------------- Step Functions extras


def _rng() -> random.Random:
    rng = getattr(_LOCAL, "rng", None)
    return rng if rng is not None else random.Random(0)


def _now(picture: Any = None, timezone: Any = None) -> str:
    """``$now()`` from the event's clock (not the wall clock), so a replay gives the same value."""
    stamp = datetime.fromtimestamp(getattr(_LOCAL, "now", 0.0), UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _millis() -> int:
    return int(getattr(_LOCAL, "now", 0.0) * 1000)


def _partition(array: Any, size: Any) -> Any:
    items = list(array) if isinstance(array, list) else [array]
    if isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise ValueError("$partition: the size must be a positive number")
    n = int(size)
    return [items[i : i + n] for i in range(0, len(items), n)]


def _range(start: Any, end: Any, step: Any) -> Any:
    s, e, st = int(start), int(end), int(step)
    if st == 0:
        raise ValueError("$range: the step cannot be 0")
    return list(range(s, e + (1 if st > 0 else -1), st))


def _hash(data: Any, algorithm: Any = "SHA-256") -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    if algorithm not in names:
        raise ValueError(f"$hash: unsupported algorithm {algorithm!r}")
    return hashlib.new(names[algorithm], str(data).encode()).hexdigest()


def _random(seed: Any = None) -> float:
    return (random.Random(seed) if seed is not None else _rng()).random()


def _uuid() -> str:
    return str(uuid.UUID(int=_rng().getrandbits(128), version=4))


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise ValueError("$parse: the argument must be a string")
    return to_jsonata(json.loads(text))


_EXTRAS: dict[str, Callable[..., Any]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
    "now": _now,
    "millis": _millis,
}
