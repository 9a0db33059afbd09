"""Run one recorded AWS case (``shared/conformance/asl/cases``) and grade it by the corpus README's tiers.

Tier 1: status + output (SUCCEEDED) or error (FAILED); tier 2: + cause; tier 3: + states_entered.
Placeholders in a case mark values AWS's recording replaced (ARNs, times, random numbers): ``any`` accepts
whatever is there, ``regex`` must fully match.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.pipelines.asl.driver import run_local
from kamado.pipelines.asl.validator import validation_errors

#: Where the corpus lives relative to some directory above a checkout (the project's ``shared/`` folder).
CORPUS = Path("shared") / "conformance" / "asl" / "cases"


def find_cases_dir(start: Path) -> Path:
    """The corpus: ``KAMADO_ASL_CASES`` if set, else ``shared/conformance/asl/cases`` beside ``start`` or
    any directory above it (a checkout may sit at any depth below the project's ``shared/``). The first
    candidate is returned when none exists, so a caller can say where it looked."""
    if os.environ.get("KAMADO_ASL_CASES"):
        return Path(os.environ["KAMADO_ASL_CASES"])
    for parent in [start, *start.parents]:
        candidate = parent / CORPUS
        if candidate.is_dir():
            return candidate
    return start.parent / CORPUS


@dataclass
class Grade:
    case_id: str
    category: str
    tier1: bool
    tier2: bool
    tier3: bool
    detail: str = ""


def load_cases(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))]


def json_equal(a: Any, b: Any) -> bool:
    """Objects without key order, numbers by value, booleans are not numbers, arrays in order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _apply_placeholders(view: dict[str, Any], expected: dict[str, Any], placeholders: list[dict[str, Any]]) -> str:
    """Copy expected values into the actual ``view`` where a placeholder allows it; '' or the mismatch."""
    for ph in placeholders:
        parts = _pointer_parts(ph["path"])
        actual_parent: Any = view
        expected_parent: Any = expected
        try:
            for part in parts[:-1]:
                key: Any = int(part) if isinstance(actual_parent, list) else part
                actual_parent = actual_parent[key]
                ekey: Any = int(part) if isinstance(expected_parent, list) else part
                expected_parent = expected_parent[ekey]
            last: Any = int(parts[-1]) if isinstance(actual_parent, list) else parts[-1]
            elast: Any = int(parts[-1]) if isinstance(expected_parent, list) else parts[-1]
            actual = actual_parent[last]
        except (KeyError, IndexError, TypeError, ValueError):
            return f"placeholder {ph['path']} missing in the actual result"
        if ph.get("match") == "regex" and not (isinstance(actual, str) and re.fullmatch(ph["pattern"], actual)):
            return f"placeholder {ph['path']}: {actual!r} does not match {ph['pattern']!r}"
        actual_parent[last] = expected_parent[elast]
    return ""


def grade(case: dict[str, Any]) -> Grade:
    expected = case["expected"]
    cid, category = case["id"], case["category"]
    if expected.get("invalid_definition"):
        errors = validation_errors(case["definition"])
        ok = bool(errors)
        return Grade(cid, category, ok, ok, ok, "" if ok else "validator accepted an invalid definition")
    errors = validation_errors(case["definition"])
    if errors:
        return Grade(cid, category, False, False, False, f"validator rejected a valid definition: {errors[:3]}")
    result = run_local(case["definition"], case["input"], persist=False)
    cause: Any = result.cause
    if expected.get("cause_is_json") and isinstance(cause, str):
        with contextlib.suppress(ValueError):
            cause = json.loads(cause)
    view = {"output": result.output, "error": result.error, "cause": cause}
    exp_view = {"output": expected.get("output"), "error": expected.get("error"), "cause": expected.get("cause")}
    problem = _apply_placeholders(view, exp_view, expected.get("placeholders") or [])
    status_ok = result.status == expected["status"] and not problem
    if expected["status"] == "SUCCEEDED":
        t1 = status_ok and json_equal(view["output"], exp_view["output"])
        t2 = t1
    else:
        t1 = status_ok and view["error"] == exp_view["error"]
        t2 = t1 and json_equal(view["cause"], exp_view["cause"])
    entered = result.states_entered()
    want = expected.get("states_entered")
    if want is None:
        t3 = t2
    elif expected.get("order_insensitive"):
        t3 = t2 and Counter(entered) == Counter(want)
    else:
        t3 = t2 and entered == want
    detail = problem or (
        f"status={result.status} output={json.dumps(result.output)[:300]} error={result.error} "
        f"cause={str(result.cause)[:300]} entered={entered[:12]}"
    )
    return Grade(cid, category, t1, t2, t3, "" if t3 else detail)


def summarize(grades: list[Grade]) -> dict[str, Any]:
    """Pass rates per category and overall, per tier (tier "1+2" is the headline figure)."""
    cats: dict[str, list[Grade]] = {}
    for g in grades:
        cats.setdefault(g.category, []).append(g)

    def rates(gs: list[Grade]) -> dict[str, Any]:
        n = len(gs) or 1
        return {
            "cases": len(gs),
            "tier1": round(sum(g.tier1 for g in gs) / n, 4),
            "tier2": round(sum(g.tier2 for g in gs) / n, 4),
            "tier3": round(sum(g.tier3 for g in gs) / n, 4),
        }

    return {"overall": rates(grades), "categories": {c: rates(gs) for c, gs in sorted(cats.items())}}
