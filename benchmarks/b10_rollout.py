"""B10 rollout: failed requests and tail latency while an endpoint switches versions under load.

A real kamado server (private home) serves B1b's model through an inference script that answers which version
(v1 or v2: two models, two endpoint configs of 2 instances each) and which instance served. Steady load: 8
keep-alive connections, each paced to a request every 40 ms (200 requests/s in all, well under the endpoint's
capacity, so a latency change is the rollout's doing and not a queue), from B1b's :class:`LoadGen`, which
counts every outcome: a failure is a non-2xx answer, a reset or refused connection, or no answer in 10 s.

Each repetition updates the endpoint three times, alternating v1 and v2, with blue/green policies and short
waits: all at once (bake 1 s), canary 10 % (bake 1.5 s, then the rest), linear 4 x 25 % (bake 1 s per step),
each with a 1 s termination wait. Per rollout: steady state = the 3 s before the update call; during = from the
call until 2.5 s after the endpoint is InService again (the old fleet drains and stops in that tail), split at
the moment the new fleet took its first traffic ("starting": the new fleet boots beside the old; "shifting":
traffic moves and the old fleet goes). One warm-up rollout, then 5 repetitions. Goal (PERFORMANCE.md): 0 failed
requests; p99 during the rollout <= 2x the steady p99 before it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import log, percentile, ratio, smoke, summarize, write_result
from benchmarks.b1b_real_model import Hosting, LoadGen, Record, build_model

NAME = "b10_rollout"
ENDPOINT = "b10"
CONNECTIONS = 8
INTERVAL_S = 0.04
GOAL_P99_RATIO = 2.0


def _policy(kind: str, wait_s: float, termination_s: float) -> dict[str, Any]:
    routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": wait_s}
    if kind == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": 10}
    elif kind == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": 25}
    return {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": termination_s}
    }


def policies(tiny: bool) -> dict[str, dict[str, Any]]:
    scale = 0.2 if tiny else 1.0
    term = 0.0 if tiny else 1.0
    return {
        "all_at_once": _policy("ALL_AT_ONCE", 1.0 * scale, term),
        "canary_10": _policy("CANARY", 1.5 * scale, term),
        "linear_4x25": _policy("LINEAR", 1.0 * scale, term),
    }


def _window(records: list[Record], t0: float, t1: float) -> dict[str, Any]:
    """Requests answered in [t0, t1): count, failures by kind, latency percentiles (successes), versions."""
    rows = [r for r in records if t0 <= r[1] < t1]
    ok = [done - sent for sent, done, outcome, _ in rows if outcome.startswith("2")]
    versions: Counter[str] = Counter()
    for _, _, outcome, body in rows:
        if outcome == "200":
            try:
                versions[str(json.loads(body or b"")["v"])] += 1
            except (ValueError, KeyError):
                versions["?"] += 1
    failures = Counter(outcome for _, _, outcome, _ in rows if not outcome.startswith("2"))
    return {
        "seconds": round(t1 - t0, 3),
        "requests": len(rows),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "p50_ms": round(percentile(ok, 50) * 1000.0, 3) if ok else None,
        "p99_ms": round(percentile(ok, 99) * 1000.0, 3) if ok else None,
        "max_ms": round(max(ok) * 1000.0, 3) if ok else None,
        "versions": dict(versions),
    }


def _rollout(
    hosting: Hosting, load: LoadGen, config: str, policy: dict[str, Any], steady_s: float, tail_s: float
) -> dict[str, Any]:
    t_steady = time.perf_counter()
    time.sleep(steady_s)
    t_update = time.perf_counter()
    body = {"EndpointConfigName": config, "DeploymentConfig": policy}
    hosting.call("POST", f"/endpoints/{ENDPOINT}/update", json=body)
    phases: dict[str, float] = {}
    deadline = t_update + 120
    while True:
        desc = hosting.describe(ENDPOINT)
        now = time.perf_counter()
        pending = desc.get("PendingDeploymentSummary")
        if pending:
            phases.setdefault(str(pending["Phase"]), now)
        if desc["EndpointStatus"] == "InService" and not pending:
            break
        if desc["EndpointStatus"] not in ("Updating", "InService") or now > deadline:
            raise RuntimeError(f"the update to {config} ended {desc['EndpointStatus']}: {desc.get('FailureReason')}")
        time.sleep(0.05)
    if desc["EndpointConfigName"] != config or desc.get("FailureReason"):
        raise RuntimeError(f"the update to {config} did not take: {desc.get('FailureReason')}")
    t_done = time.perf_counter()
    time.sleep(tail_s)
    t_end = time.perf_counter()
    records = list(load.records)
    t_traffic = min((t for phase, t in phases.items() if phase != "Starting"), default=t_done)
    return {
        "config": config,
        "steady": _window(records, t_steady, t_update),
        "during": _window(records, t_update, t_end),
        "starting": _window(records, t_update, t_traffic),
        "shifting": _window(records, t_traffic, t_end),
        "update_to_in_service_s": round(t_done - t_update, 3),
        "phases_s": {phase: round(t - t_update, 3) for phase, t in phases.items()},
    }


def _p99_ratio(r: dict[str, Any], part: str = "during") -> float | None:
    p99, steady = r[part]["p99_ms"], r["steady"]["p99_ms"]
    return ratio(p99, steady) if p99 is not None and steady else None


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    reps, warmup = (1, 0) if tiny else (5, 1)
    steady_s, tail_s = (0.3, 0.5) if tiny else (3.0, 2.5)
    instances = 1 if tiny else 2
    plans = policies(tiny)
    rollouts: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
    with tempfile.TemporaryDirectory(prefix="kamado-b10-") as tmp_name, Hosting(Path(tmp_name) / "home") as hosting:
        files = build_model(Path(tmp_name) / "model")
        for version in ("v1", "v2"):
            hosting.model(version, files, script=True, BENCH_VERSION=version)
            hosting.config(f"c-{version}", version, instances=instances)
        url = hosting.endpoint(ENDPOINT, "c-v1")
        current = "c-v1"
        load = LoadGen(url, files.body, keep_bodies=True).start(CONNECTIONS, INTERVAL_S)
        try:
            time.sleep(1.0)
            schedule = [("warm-up", "all_at_once")] * warmup
            schedule += [(f"{rep + 1}/{reps}", name) for rep in range(reps) for name in plans]
            for label, name in schedule:
                current = "c-v2" if current == "c-v1" else "c-v1"
                r = _rollout(hosting, load, current, plans[name], steady_s, tail_s)
                log(
                    f"{NAME}: {label} {name} -> {current}: {r['during']['failed']} failed, p99 "
                    f"{r['during']['p99_ms']} ms vs steady {r['steady']['p99_ms']} ms, "
                    f"InService after {r['update_to_in_service_s']} s"
                )
                if label != "warm-up":
                    rollouts[name].append(r)
        finally:
            load.stop()
    all_records = load.records
    failed_total = Counter(o for _, _, o, _ in all_records if not o.startswith("2"))
    per_policy: dict[str, Any] = {}
    for name, rows in rollouts.items():
        ratios = [x for r in rows if (x := _p99_ratio(r)) is not None]
        shifting = [x for r in rows if (x := _p99_ratio(r, "shifting")) is not None]
        starting = [x for r in rows if (x := _p99_ratio(r, "starting")) is not None]
        per_policy[name] = {
            "failed": sum(r["during"]["failed"] for r in rows),
            "requests_during": sum(r["during"]["requests"] for r in rows),
            "p99_during_over_steady": summarize(ratios),
            "p99_starting_over_steady": summarize(starting),
            "p99_shifting_over_steady": summarize(shifting),
            "steady_p99_ms": summarize([r["steady"]["p99_ms"] for r in rows if r["steady"]["p99_ms"] is not None]),
            "during_p99_ms": summarize([r["during"]["p99_ms"] for r in rows if r["during"]["p99_ms"] is not None]),
            "update_to_in_service_s": summarize([r["update_to_in_service_s"] for r in rows]),
            "both_versions_served_during": all(len(r["during"]["versions"]) == 2 for r in rows),
        }
    med = {name: p["p99_during_over_steady"].get("p50") for name, p in per_policy.items()}
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            f"real server; endpoint of {instances} instance(s) per fleet; {CONNECTIONS} keep-alive connections "
            f"each paced to a request every {INTERVAL_S:g} s; per repetition one update per policy, alternating "
            f"v1/v2; steady = {steady_s:g} s before the update call, during = call -> InService + {tail_s:g} s; "
            f"{warmup} warm-up rollout, {reps} repetitions; p99 ratio per rollout, median per policy."
        ),
        "load_generator": "this process: asyncio streams on uvloop in one thread (B1b's LoadGen)",
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],  # a shared machine: how busy
        "config": {
            "connections": CONNECTIONS,
            "interval_s": INTERVAL_S,
            "instances_per_fleet": instances,
            "policies": plans,
            "repetitions": reps,
            "warmup": warmup,
            "steady_s": steady_s,
            "tail_s": tail_s,
        },
        "figures": {
            "per_policy": per_policy,
            "rollouts": rollouts,
            "requests": len(all_records),
            "failed_total": dict(failed_total),
        },
        "comparator": {
            "name": "steady state: the same load in the seconds before each update",
            "steady_p99_ms": summarize([r["steady"]["p99_ms"] for rows in rollouts.values() for r in rows]),
            "steady_p50_ms": summarize([r["steady"]["p50_ms"] for rows in rollouts.values() for r in rows]),
        },
        "ratio": {
            **{f"p99_{name}_during_over_steady": v for name, v in med.items() if v},
            "meaning": "p99 during the rollout / p99 in the steady state before it (median over repetitions); "
            "<= 2.0 meets the goal",
        },
        "goal": {
            "failures_eq": 0,
            "p99_ratio_le": GOAL_P99_RATIO,
            "failures_met": sum(failed_total.values()) == 0,
            "p99_met": all(v is not None and v <= GOAL_P99_RATIO for v in med.values()),
            "p99_met_per_policy": {name: v is not None and v <= GOAL_P99_RATIO for name, v in med.items()},
            "judged_at": "failures over the whole run; p99 ratio as the median over repetitions, per policy",
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "goal": r["goal"]}, indent=1))
