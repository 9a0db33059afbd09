"""The JSONPath subset ASL uses, with AWS's result-shape rules, compiled once per path string.

Why not a library: AWS's quirks (a definite path yields its single value, an indefinite one - wildcard,
slice, filter, ``..`` - always yields a list, possibly empty; a definite path that matches nothing is an
error) are easier to get right in ~250 lines than to bend a general engine into.

Supported: ``$``, ``.name``, ``['name']``, ``[n]`` (negative too), ``[a:b:c]``, ``[*]``/``.*``, ``..name``,
unions ``[0,2]``/``['a','b']`` and filters ``[?(@.x op literal)]`` (``== != < <= > >=``, regex ``=~ /re/``)
combined with ``&&``/``||``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

Step = tuple[Any, ...]


class JsonPathSyntaxError(ValueError):
    """The path string is not valid JSONPath (reported by the validator and at run time)."""


class PathNotFound(LookupError):
    """A definite path matched nothing in the value."""


@dataclass(frozen=True)
class CompiledPath:
    text: str
    steps: tuple[Step, ...]
    definite: bool

    def matches(self, value: Any) -> list[Any]:
        current = [value]
        for step in self.steps:
            nxt: list[Any] = []
            for node in current:
                _apply(step, node, nxt)
            current = nxt
        return current

    def get(self, value: Any) -> Any:
        """The value at this path: a single value if definite, else the list of matches."""
        found = self.matches(value)
        if self.definite:
            if not found:
                raise PathNotFound(self.text)
            return found[0]
        return found

    def is_reference(self) -> bool:
        """Reference paths (ResultPath, Variable, ...) may only use names and indexes."""
        return self.definite

    def set(self, target: Any, value: Any) -> Any:
        """Return a copy of ``target`` with ``value`` placed at this (reference) path, creating objects."""
        if not self.steps:
            return value
        return _set(target, self.steps, value)


def _apply(step: Step, node: Any, out: list[Any]) -> None:
    kind = step[0]
    if kind == "key":
        if isinstance(node, dict) and step[1] in node:
            out.append(node[step[1]])
    elif kind == "index":
        if isinstance(node, list) and -len(node) <= step[1] < len(node):
            out.append(node[step[1]])
    elif kind == "wild":
        if isinstance(node, dict):
            out.extend(node.values())
        elif isinstance(node, list):
            out.extend(node)
    elif kind == "slice":
        if isinstance(node, list):
            out.extend(node[slice(step[1], step[2], step[3])])
    elif kind == "union":
        for sub in step[1]:
            _apply(sub, node, out)
    elif kind == "desc":
        _descend(node, step[1], out)
    elif kind == "filter":
        items = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
        out.extend(item for item in items if _filter_true(step[1], item))


def _descend(node: Any, name: str, out: list[Any]) -> None:
    if isinstance(node, dict):
        if name in node:
            out.append(node[name])
        for child in node.values():
            _descend(child, name, out)
    elif isinstance(node, list):
        for child in node:
            _descend(child, name, out)


def _set(target: Any, steps: tuple[Step, ...], value: Any) -> Any:
    step, rest = steps[0], steps[1:]
    if step[0] == "key":
        if target is None:
            target = {}
        if not isinstance(target, dict):
            raise PathNotFound(step[1])
        copy = dict(target)
        copy[step[1]] = _set(copy.get(step[1]), rest, value) if rest else value
        return copy
    if step[0] == "index" and isinstance(target, list) and -len(target) <= step[1] < len(target):
        items = list(target)
        items[step[1]] = _set(items[step[1]], rest, value) if rest else value
        return items
    raise PathNotFound(str(step))


# ------------------------------------------------------------------------------------------ filters


_COMPARE = {
    "==": lambda a, b: (a == b and type(a) is type(b)) or (_num(a) and _num(b) and a == b),
    "!=": lambda a, b: not (a == b and (type(a) is type(b) or (_num(a) and _num(b)))),
    "<": lambda a, b: _ordered(a, b) and a < b,
    "<=": lambda a, b: _ordered(a, b) and a <= b,
    ">": lambda a, b: _ordered(a, b) and a > b,
    ">=": lambda a, b: _ordered(a, b) and a >= b,
    "=~": lambda a, b: isinstance(a, str) and re.search(b, a) is not None,
}


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ordered(a: Any, b: Any) -> bool:
    return (_num(a) and _num(b)) or (isinstance(a, str) and isinstance(b, str))


def _filter_true(expr: Any, item: Any) -> bool:
    kind = expr[0]
    if kind == "or":
        return any(_filter_true(e, item) for e in expr[1])
    if kind == "and":
        return all(_filter_true(e, item) for e in expr[1])
    if kind == "exists":
        return bool(expr[1].matches(item))
    found = expr[1].matches(item)
    return bool(found) and _COMPARE[expr[2]](found[0], expr[3])


_FILTER_CMP = re.compile(r"^\s*@(?P<path>[^=!<>~]*?)\s*(?P<op>=~|==|!=|<=|>=|<|>)\s*(?P<lit>.+?)\s*$")


def _wrapped(text: str) -> bool:
    """Whether one pair of parentheses encloses the whole text."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _compile_filter(text: str) -> Any:
    text = text.strip()
    while _wrapped(text):
        text = text[1:-1].strip()
    if "||" in text:
        return ("or", [_compile_filter(part) for part in text.split("||")])
    if "&&" in text:
        return ("and", [_compile_filter(part) for part in text.split("&&")])
    m = _FILTER_CMP.match(text)
    if m:
        lit = m.group("lit")
        if m.group("op") == "=~" and lit.startswith("/") and lit.rfind("/") > 0:
            literal: Any = lit[1 : lit.rfind("/")]  # /pattern/ (flags are not supported)
        elif lit.startswith("'") and lit.endswith("'") and len(lit) >= 2:
            literal = lit[1:-1]
        else:
            try:
                literal = json.loads(lit)
            except ValueError as exc:
                raise JsonPathSyntaxError(f"bad literal {lit!r} in filter") from exc
        return ("cmp", compile_path("$" + m.group("path").strip()), m.group("op"), literal)
    if text.startswith("@"):
        return ("exists", compile_path("$" + text[1:].strip()))
    raise JsonPathSyntaxError(f"unsupported filter expression {text!r}")


# ------------------------------------------------------------------------------------------- parser


_NAME = re.compile(r"[^.\[\]\s]+")


def _bracket_end(text: str, start: int) -> int:
    """Index of the ``]`` closing the bracket opened at ``start``, honouring quotes and nesting."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise JsonPathSyntaxError(f"unclosed '[' in {text!r}")


def _selector(inner: str, text: str) -> tuple[Step, bool]:
    inner = inner.strip()
    if inner == "*":
        return ("wild",), False
    if inner.startswith("?"):
        body = inner[1:].strip()
        return ("filter", _compile_filter(body)), False
    parts = _split_union(inner)
    if len(parts) > 1:
        return ("union", tuple(_selector(p, text)[0] for p in parts)), False
    if inner[:1] in "'\"" and inner[-1:] == inner[:1] and len(inner) >= 2:
        return ("key", inner[1:-1].replace("\\" + inner[0], inner[0])), True
    if ":" in inner:
        bounds = inner.split(":")
        if len(bounds) > 3:
            raise JsonPathSyntaxError(f"bad slice [{inner}] in {text!r}")
        try:
            nums = [int(b) if b.strip() else None for b in bounds] + [None] * (3 - len(bounds))
        except ValueError as exc:
            raise JsonPathSyntaxError(f"bad slice [{inner}] in {text!r}") from exc
        if nums[2] == 0:
            raise JsonPathSyntaxError(f"slice step cannot be 0 in {text!r}")
        return ("slice", nums[0], nums[1], nums[2]), False
    try:
        return ("index", int(inner)), True
    except ValueError:
        raise JsonPathSyntaxError(f"bad selector [{inner}] in {text!r}") from None


def _split_union(inner: str) -> list[str]:
    parts, quote, buf = [], "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            parts.append(buf)
            buf = ""
            continue
        buf += ch
    parts.append(buf)
    return parts


@functools.lru_cache(maxsize=4096)
def compile_path(text: str) -> CompiledPath:
    """Parse a path that starts with ``$`` (the caller strips ``$$``/``$var`` prefixes first)."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise JsonPathSyntaxError(f"a JSONPath must start with '$', got {text!r}")
    steps: list[Step] = []
    definite = True
    i = 1
    while i < len(text):
        ch = text[i]
        if text.startswith("..", i):
            m = _NAME.match(text, i + 2)
            if not m:
                raise JsonPathSyntaxError(f"expected a name after '..' in {text!r}")
            steps.append(("desc", m.group(0)))
            definite = False
            i = m.end()
        elif ch == ".":
            if text.startswith(".*", i):
                steps.append(("wild",))
                definite = False
                i += 2
                continue
            m = _NAME.match(text, i + 1)
            if not m:
                raise JsonPathSyntaxError(f"expected a name after '.' in {text!r}")
            steps.append(("key", m.group(0)))
            i = m.end()
        elif ch == "[":
            end = _bracket_end(text, i)
            step, is_definite = _selector(text[i + 1 : end], text)
            steps.append(step)
            definite = definite and is_definite
            i = end + 1
        else:
            raise JsonPathSyntaxError(f"unexpected {ch!r} at position {i} in {text!r}")
    return CompiledPath(text, tuple(steps), definite)


def aws_path_repr(path: CompiledPath) -> str:
    """AWS's normalised form used in error causes: ``$['a']['b'][0]``."""
    out = "$"
    for step in path.steps:
        if step[0] == "key":
            out += f"['{step[1]}']"
        elif step[0] == "index":
            out += f"[{step[1]}]"
        else:
            return path.text
    return out
