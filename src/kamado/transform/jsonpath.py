"""The JSONPath subset SageMaker's batch transform accepts in ``InputFilter`` and ``OutputFilter``.

    $                 the whole record
    $.name  $.a.b     a member (of a member)
    $['a','b']        several members: an object with just those
    $[2]  $[-1]       one element of an array (a CSV row acts as an array of its columns)
    $[0,3]  $[1:]  $[0,5:]  $[:-1]
                      several elements, indices and slices mixed: an array
    $.*  $[*]         every member or element

A path is parsed once, at submit (a bad one is a 400), then applied to every record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\.\*|\.([A-Za-z_][A-Za-z0-9_\-]*)|\[([^\]]*)\]")
_INT = re.compile(r"^-?\d+$")
_SLICE = re.compile(r"^(-?\d+)?:(-?\d+)?$")
_QUOTED = re.compile(r"""^(?:'([^']*)'|"([^"]*)")$""")


@dataclass(frozen=True)
class Selector:
    """One ``[...]`` (or ``.name``/``.*``): what it picks. ``single`` picks one value, unwrapped."""

    items: tuple[int | slice | str, ...]
    star: bool = False

    @property
    def single(self) -> bool:
        return not self.star and len(self.items) == 1 and not isinstance(self.items[0], slice)

    def apply(self, value: Any) -> Any:
        if self.star:
            if isinstance(value, dict):
                return list(value.values())
            if isinstance(value, list):
                return list(value)
            raise ValueError(f"'*' needs an object or an array, not {type(value).__name__}")
        if isinstance(value, dict):
            names = [i for i in self.items if isinstance(i, str)]
            if len(names) != len(self.items):
                raise ValueError("an object takes member names, not indices")
            missing = [n for n in names if n not in value]
            if missing:
                raise ValueError(f"the record has no member {missing[0]!r}")
            return value[names[0]] if self.single else {n: value[n] for n in names}
        if isinstance(value, list):
            out: list[Any] = []
            for item in self.items:
                if isinstance(item, str):
                    raise ValueError(f"an array takes indices, not the member name {item!r}")
                if isinstance(item, slice):
                    out.extend(value[item])
                    continue
                if not -len(value) <= item < len(value):
                    raise ValueError(f"index {item} is out of range for {len(value)} elements")
                if self.single:
                    return value[item]
                out.append(value[item])
            return out
        raise ValueError(f"cannot select from a {type(value).__name__}")


@dataclass(frozen=True)
class Path:
    text: str
    selectors: tuple[Selector, ...]

    def is_root(self) -> bool:
        return not self.selectors

    def index_only(self) -> bool:
        return all(s.star or all(not isinstance(i, str) for i in s.items) for s in self.selectors)

    def apply(self, value: Any) -> Any:
        for selector in self.selectors:
            value = selector.apply(value)
        return value


def _item(text: str, path: str) -> int | slice | str:
    text = text.strip()
    if _INT.match(text):
        return int(text)
    m = _SLICE.match(text)
    if m:
        return slice(int(m.group(1)) if m.group(1) else None, int(m.group(2)) if m.group(2) else None)
    m = _QUOTED.match(text)
    if m:
        return m.group(1) if m.group(1) is not None else m.group(2)
    raise ValueError(f"{path!r}: {text!r} is not an index, a slice or a quoted name")


def parse_path(path: str) -> Path:
    """Parse ``path``; a ValueError says what is wrong with it."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r} must start with '$' (the record)")
    selectors: list[Selector] = []
    pos = 1
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            raise ValueError(
                f"{path!r}: unsupported syntax at {path[pos:]!r}; use $, .name, [i], [i,j], [i:j] or ['a','b']"
            )
        pos = m.end()
        if m.group(0) == ".*":
            selectors.append(Selector((), star=True))
        elif m.group(1) is not None:
            selectors.append(Selector((m.group(1),)))
        else:
            inner = m.group(2).strip()
            if inner == "*":
                selectors.append(Selector((), star=True))
                continue
            if not inner:
                raise ValueError(f"{path!r}: empty brackets")
            selectors.append(Selector(tuple(_item(part, path) for part in inner.split(","))))
    return Path(path, tuple(selectors))
