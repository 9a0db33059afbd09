"""ASL conformance: the interpreter and validator against AWS-recorded Step Functions cases.

kamado side: every case under ``shared/conformance/asl/cases`` runs through the pure interpreter with the
in-memory driver and a fake clock, and is graded at the README's tiers (1: status + output/error,
2: + cause, 3: + states entered). Comparator: AWS's own recorded behaviour (the expected values), so the
ratio is simply the pass rate (1.0 = behaves like AWS on every case). Goal: >= 95 % overall at tier 1+2
and 100 % of ``intrinsic_functions`` and ``choice_operators``.

Also measured, for the later throughput work: Pass-chain transitions per second through
``Interpreter.step`` (state deep-copied on every step, as a durable runner would persist it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks import REPO, log, smoke, write_result
from kamado.pipelines.asl.conformance import find_cases_dir, grade, load_cases, summarize
from kamado.pipelines.asl.driver import run_local
from kamado.pipelines.asl.interpreter import Interpreter

NAME = "asl_conformance"
CASES_DIR = find_cases_dir(REPO)


def _pass_chain_rate(length: int, runs: int) -> float:
    states: dict[str, Any] = {
        f"S{i}": {"Type": "Pass", "Result": {"i": i}, "ResultPath": "$.last", "Next": f"S{i + 1}"}
        for i in range(length)
    }
    states[f"S{length}"] = {"Type": "Succeed"}
    definition = {"StartAt": "S0", "States": states}
    interp = Interpreter(definition)
    t0 = time.perf_counter()
    for _ in range(runs):
        result = run_local(definition, {"x": 1}, interpreter=interp)
        assert result.status == "SUCCEEDED"
    return (length + 1) * runs / (time.perf_counter() - t0)


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    cases = load_cases(CASES_DIR) if CASES_DIR.is_dir() else []
    if not cases:
        log(f"{NAME}: no conformance corpus at {CASES_DIR}; measuring only the pass-chain throughput")
    if smoke():
        cases = cases[::40]
    t0 = time.perf_counter()
    grades = [grade(c) for c in cases]
    elapsed = time.perf_counter() - t0
    summary = summarize(grades)
    failures = [{"id": g.case_id, "detail": g.detail[:300]} for g in grades if not g.tier3]
    rate = _pass_chain_rate(50, 2 if smoke() else 40)
    overall = summary["overall"]
    cats = summary["categories"]
    log(f"{NAME}: tier2 {overall['tier2']:.1%} of {overall['cases']} cases; pass chain {rate:.0f} transitions/s")
    data = {
        "figures": {
            "cases": len(cases),
            "corpus": str(CASES_DIR),
            "overall": overall,
            "categories": cats,
            "failures": failures,
            "cases_per_s": round(len(cases) / elapsed, 1),
            "pass_chain_transitions_per_s": round(rate, 1),
        },
        "comparator": {"name": "AWS Step Functions behaviour recorded in LocalStack's snapshots", "pass_rate": 1.0},
        "ratio": {
            "tier1": float(overall["tier1"]) or 1e-9,
            "tier2": float(overall["tier2"]) or 1e-9,
            "tier3": float(overall["tier3"]) or 1e-9,
            "meaning": "share of recorded AWS cases kamado reproduces (1.0 = all)",
        },
        "goal": {
            "overall_tier2_ge": 0.95,
            "overall_met": overall["tier2"] >= 0.95,
            "intrinsic_functions_met": cats.get("intrinsic_functions", {}).get("tier2", 1.0) == 1.0,
            "choice_operators_met": cats.get("choice_operators", {}).get("tier2", 1.0) == 1.0,
        },
    }
    path = write_result(NAME, data, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    print(run()[0])
