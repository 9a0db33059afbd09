"""Intrinsic functions (``States.Format(...)`` and friends) for JSONPath mode: a parser and the 18 functions.

A call is parsed once into a small tree (cached per string) and evaluated against a resolver that reads
paths, so the interpreter can re-run it cheaply on every transition. Bad *definitions* (unknown function,
wrong arity, syntax) raise :class:`IntrinsicSyntaxError`, which the validator reports at create time;
bad *values* at run time raise :class:`~kamado.pipelines.asl.errors.AslError` (``States.Runtime``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kamado.pipelines.asl.errors import RUNTIME, AslError
from kamado.pipelines.asl.limits import MAX_INTRINSIC_NESTING, MAX_INTRINSIC_STRING_CHARS


class IntrinsicSyntaxError(ValueError):
    """The text is not a well-formed intrinsic call (name, arity, quoting)."""


@dataclass(frozen=True)
class Literal:
    value: Any
    raw: str | None = None  # the string literal with its escapes kept, for States.Format's ``{}``


@dataclass(frozen=True)
class PathArg:
    path: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


#: name -> (min args, max args or None)
ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}


def is_intrinsic(text: str) -> bool:
    return isinstance(text, str) and text.startswith("States.")


@functools.lru_cache(maxsize=4096)
def parse_intrinsic(text: str) -> Call:
    parser = _Parser(text)
    call = parser.call(depth=1)
    parser.skip_ws()
    if parser.pos != len(text):
        raise IntrinsicSyntaxError(f"unexpected text after the call at position {parser.pos} in {text!r}")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n\r":
            self.pos += 1

    def call(self, depth: int) -> Call:
        if depth > MAX_INTRINSIC_NESTING:
            raise IntrinsicSyntaxError(f"intrinsic calls nest deeper than {MAX_INTRINSIC_NESTING} levels")
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "._"):
            self.pos += 1
        name = self.text[start : self.pos]
        if name not in ARITY:
            raise IntrinsicSyntaxError(f"unknown intrinsic function {name!r}; valid ones: {', '.join(ARITY)}")
        self.skip_ws()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise IntrinsicSyntaxError(f"expected '(' after {name}")
        self.pos += 1
        args: list[Any] = []
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
        else:
            while True:
                self.skip_ws()
                args.append(self.arg(depth))
                self.skip_ws()
                if self.pos >= len(self.text):
                    raise IntrinsicSyntaxError(f"unclosed '(' in call to {name}")
                ch = self.text[self.pos]
                self.pos += 1
                if ch == ")":
                    break
                if ch != ",":
                    raise IntrinsicSyntaxError(f"expected ',' or ')' in call to {name}, got {ch!r}")
        low, high = ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            want = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
            raise IntrinsicSyntaxError(f"{name} takes {want} argument(s), got {len(args)}")
        return Call(name, tuple(args))

    def arg(self, depth: int) -> Any:
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise IntrinsicSyntaxError("missing argument")
        ch = text[pos]
        if ch == "'":
            return self.string()
        if ch == "$":
            return PathArg(self.until_arg_end())
        if text.startswith("States.", pos):
            return self.call(depth + 1)
        token = self.until_arg_end().strip()
        if token in ("true", "false", "null"):
            return Literal(json.loads(token))
        try:
            return Literal(json.loads(token))
        except ValueError:
            raise IntrinsicSyntaxError(f"bad argument {token!r}: quote strings with '...'") from None

    def string(self) -> Literal:
        self.pos += 1
        out, raw = [], []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append(nxt)
                raw.append(ch + nxt)
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return Literal("".join(out), "".join(raw))
            out.append(ch)
            raw.append(ch)
            self.pos += 1
        raise IntrinsicSyntaxError("unterminated string literal")

    def until_arg_end(self) -> str:
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch in "([":
                depth += 1
            elif ch in ")]":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            self.pos += 1
        return self.text[start : self.pos].rstrip()


# ---------------------------------------------------------------------------------------- evaluation


@dataclass
class IntrinsicEnv:
    """What evaluation needs from the interpreter: a path resolver, an RNG source, the ArrayRange cap."""

    resolve: Callable[[str], Any]
    rng: random.Random
    max_array_range: int = 1000


def evaluate_intrinsic(call: Call, env: IntrinsicEnv) -> Any:
    args = [_eval_arg(a, env) for a in call.args]
    if call.name == "States.Format":
        return _format(call, args)
    try:
        return _FUNCTIONS[call.name](args, env)
    except AslError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, binascii.Error, UnicodeError) as exc:
        raise AslError(RUNTIME, f"{call.name} failed: {exc}") from None


def _eval_arg(arg: Any, env: IntrinsicEnv) -> Any:
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, PathArg):
        return env.resolve(arg.path)
    return evaluate_intrinsic(arg, env)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(value)
    if isinstance(value, dict):  # AWS renders objects and arrays the way Java's toString() does
        return "{" + ", ".join(f"{k}={_to_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_to_text(v) for v in value) + "]"
    return str(value)


def _format(call: Call, args: list[Any]) -> str:
    template = call.args[0]
    if not isinstance(args[0], str):
        raise AslError(RUNTIME, "States.Format: the first argument must be a string template")
    raw = template.raw if isinstance(template, Literal) and template.raw is not None else args[0]
    values = iter(args[1:])
    out, i, used = [], 0, 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        elif raw.startswith("{}", i):
            try:
                out.append(_to_text(next(values)))
            except StopIteration:
                raise AslError(RUNTIME, "States.Format: more '{}' than arguments") from None
            used += 1
            i += 2
        else:
            out.append(raw[i])
            i += 1
    if used != len(args) - 1:
        raise AslError(RUNTIME, "States.Format: the number of '{}' must match the number of arguments")
    return "".join(out)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AslError(RUNTIME, f"{what} must be a number, got {json.dumps(value)}")
    return int(value) if isinstance(value, int) else _java_round(value)


def _java_round(value: float) -> int:
    return math.floor(value + 0.5)


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise AslError(RUNTIME, f"{what} must be an array, got {json.dumps(value)}")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise AslError(RUNTIME, f"{what} must be a string, got {json.dumps(value)}")
    if len(value) > MAX_INTRINSIC_STRING_CHARS:
        raise AslError(RUNTIME, f"{what} is longer than {MAX_INTRINSIC_STRING_CHARS} characters")
    return value


def _partition(args: list[Any], env: IntrinsicEnv) -> list[Any]:
    arr, size = _array(args[0], "States.ArrayPartition's array"), _int(args[1], "chunk size")
    if size <= 0:
        raise AslError(RUNTIME, "States.ArrayPartition: the chunk size must be greater than 0")
    return [arr[i : i + size] for i in range(0, len(arr), size)]


def _range(args: list[Any], env: IntrinsicEnv) -> list[int]:
    start, end, step = (_int(a, "States.ArrayRange argument") for a in args)
    if step <= 0:
        raise AslError(RUNTIME, f"States.ArrayRange: the step must be a positive integer, got {step}")
    count = max(0, (end - start) // step + 1)  # step > 0 here
    if count > env.max_array_range:
        raise AslError(RUNTIME, f"States.ArrayRange would create {count} items; the limit is {env.max_array_range}")
    return list(range(start, end + 1, step))


def _unique(args: list[Any], env: IntrinsicEnv) -> list[Any]:
    seen: list[str] = []
    out = []
    for item in _array(args[0], "States.ArrayUnique's argument"):
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.append(key)
            out.append(item)
    return out


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any], env: IntrinsicEnv) -> str:
    data = args[0] if isinstance(args[0], str) else _to_text(args[0])
    _string(data, "States.Hash's data")
    if args[1] not in _HASHES:
        raise AslError(RUNTIME, f"States.Hash: unsupported algorithm {args[1]!r}; use one of {', '.join(_HASHES)}")
    return hashlib.new(_HASHES[args[1]], data.encode()).hexdigest()


def _merge(args: list[Any], env: IntrinsicEnv) -> dict[str, Any]:
    if not isinstance(args[0], dict) or not isinstance(args[1], dict):
        raise AslError(RUNTIME, "States.JsonMerge: both arguments must be JSON objects")
    if args[2] is not False:
        raise AslError(RUNTIME, "States.JsonMerge: only shallow merges are supported; pass false")
    return {**args[0], **args[1]}


def _random(args: list[Any], env: IntrinsicEnv) -> int:
    low, high = _int(args[0], "States.MathRandom start"), _int(args[1], "States.MathRandom end")
    rng = random.Random(_int(args[2], "States.MathRandom seed")) if len(args) == 3 else env.rng
    return rng.randrange(low, high) if high > low else low


def _split(args: list[Any], env: IntrinsicEnv) -> list[str]:
    text, delims = _string(args[0], "States.StringSplit's string"), _string(args[1], "delimiters")
    parts = [text]
    for d in delims:
        parts = [p for part in parts for p in part.split(d)]
    return [p for p in parts if p]


def _uuid(args: list[Any], env: IntrinsicEnv) -> str:
    return str(uuid.UUID(int=env.rng.getrandbits(128), version=4))


def _get_item(args: list[Any], env: IntrinsicEnv) -> Any:
    arr, idx = _array(args[0], "States.ArrayGetItem's array"), _int(args[1], "index")
    if not 0 <= idx < len(arr):
        raise AslError(RUNTIME, f"States.ArrayGetItem: index {idx} is out of bounds for {len(arr)} items")
    return arr[idx]


def _string_to_json(args: list[Any], env: IntrinsicEnv) -> Any:
    if args[0] is None:
        return None
    text = _string(args[0], "States.StringToJson's argument")
    return json.loads(text) if text.strip() else None


def _math_add(args: list[Any], env: IntrinsicEnv) -> int:
    return _int(args[0], "States.MathAdd argument") + _int(args[1], "States.MathAdd argument")


_FUNCTIONS: dict[str, Callable[[list[Any], IntrinsicEnv], Any]] = {
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda a, e: json.dumps(a[0], separators=(",", ":"), ensure_ascii=False),
    "States.Array": lambda a, e: list(a),
    "States.ArrayPartition": _partition,
    "States.ArrayContains": lambda a, e: any(_deep_eq(x, a[1]) for x in _array(a[0], "array")),
    "States.ArrayRange": _range,
    "States.ArrayGetItem": _get_item,
    "States.ArrayLength": lambda a, e: len(_array(a[0], "States.ArrayLength's argument")),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda a, e: base64.b64encode(_string(a[0], "input").encode()).decode(),
    "States.Base64Decode": lambda a, e: base64.b64decode(_string(a[0], "input"), validate=True).decode(),
    "States.Hash": _hash,
    "States.JsonMerge": _merge,
    "States.MathRandom": _random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _split,
    "States.UUID": _uuid,
}


def _deep_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)
