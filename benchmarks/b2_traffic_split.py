"""B2 traffic split: does weighted routing hand each variant its configured share, and what does it cost?

Two variants behind a real router process, each with one instance on the same no-op worker (B1's, on uvloop),
so that the split and the one-variant endpoint below differ only in the routing decision. The weights are set
to 90/10, then 50/50; for each, N requests go through the router from 8 keep-alive connections (B1's asyncio
client) and the ``X-Amzn-Invoked-Production-Variant`` of every answer is counted. The observed share of the
first variant must lie inside the binomial 99 % interval around the configured one (PERFORMANCE.md: 100k
requests in all; the smoke mode sends far fewer).

Cost: the same load on a one-variant endpoint (B1's setup) and on a 50/50 two-variant endpoint of the same
table, interleaved, 5 repetitions after a warm-up round, at 1 connection (latency, the router idle between
requests) and 8 (throughput, the router saturated): p50 at 1 and req/s at 8 of the split over the single
variant. Goal: inside the interval; overhead <= +5 % of B1.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, summarize, write_result
from benchmarks.b1_router_hop import figures, load, noop_worker

NAME = "b2_traffic_split"
SPLITS = ((90.0, 10.0), (50.0, 50.0))
Z_99 = 2.5758  # two-sided 99 %
CONNECTIONS = 8
COST_CONNECTIONS = (1, 8)
GOAL_OVERHEAD = 1.05
VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"


def _table(version: int, url: str, weights: tuple[float, float]) -> Any:
    from kamado.hosting.routing import EndpointRoute, InstanceRoute, RoutingTable, VariantRoute

    def variant(name: str, url: str, weight: float) -> VariantRoute:
        return VariantRoute(variant_name=name, weight=weight, instances=(InstanceRoute(instance_id=name, url=url),))

    split = (variant("A", url, weights[0]), variant("B", url, weights[1]))
    single = (variant("A", url, 1.0),)
    return RoutingTable(
        version=version,
        endpoints={
            "b2-split": EndpointRoute(endpoint_name="b2-split", variants=split),
            "b2-single": EndpointRoute(endpoint_name="b2-single", variants=single),
        },
    )


def _share(url: str, weights: tuple[float, float], n: int) -> dict[str, Any]:
    run = load(url, "/endpoints/b2-split/invocations", CONNECTIONS, 3600.0, requests=n, variant_header=VARIANT_HEADER)
    seen = dict(run["variants"])
    total = sum(seen.values())
    p = weights[0] / sum(weights)
    half = Z_99 * math.sqrt(p * (1 - p) / total)
    observed = seen.get("A", 0) / total
    return {
        "configured_share_A": p,
        "requests": total,
        "errors": run["errors"],
        "counts": seen,
        "observed_share_A": round(observed, 5),
        "interval_99": [round(p - half, 5), round(p + half, 5)],
        "inside": abs(observed - p) <= half,
        "z": round((observed - p) / math.sqrt(p * (1 - p) / total), 3),
    }


def _overhead(url: str, conns: int, seconds: float, reps: int) -> dict[str, Any]:
    paths = {"single": "/endpoints/b2-single/invocations", "split": "/endpoints/b2-split/invocations"}
    for path in paths.values():
        load(url, path, conns, seconds)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in paths}
    for _ in range(reps):
        for name, path in paths.items():
            runs[name].append(figures(load(url, path, conns, seconds)))
    med = statistics.median
    pairs = list(zip(runs["single"], runs["split"], strict=True))
    summaries = {
        name: {k: summarize([r[k] for r in rows], 3) for k in ("rps", "p50_ms")} for name, rows in runs.items()
    }
    return {
        "connections": conns,
        **summaries,
        "rps_split_over_single": round(med([b["rps"] / a["rps"] for a, b in pairs]), 3),
        "p50_split_over_single": round(med([b["p50_ms"] / a["p50_ms"] for a, b in pairs]), 3),
    }


def run() -> tuple[Path, dict[str, Any]]:
    from kamado.hosting.router_process import RouterClient, ensure_router

    started = time.monotonic()
    tiny = smoke()
    per_split = 2000 if tiny else 50_000
    seconds, reps = (0.2, 2) if tiny else (1.5, 5)
    shares: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kamado-b2-") as tmp, noop_worker() as worker:
        handle = ensure_router(Path(tmp) / "home")
        admin = RouterClient(handle)
        try:
            for version, weights in enumerate(SPLITS, start=1):
                admin.publish(_table(version, worker, weights))
                label = f"{weights[0]:g}/{weights[1]:g}"
                log(f"{NAME}: {label}, {per_split} requests")
                shares[label] = _share(handle.url, weights, per_split)
            cost = {}
            for conns in COST_CONNECTIONS:
                log(f"{NAME}: cost at {conns} connection(s), single vs split endpoint, {reps} x {seconds:g} s each")
                cost[str(conns)] = _overhead(handle.url, conns, seconds, reps)
        finally:
            admin.stop()
    inside = all(s["inside"] for s in shares.values())
    latency, throughput = cost["1"]["p50_split_over_single"], cost["8"]["rps_split_over_single"]
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            f"two variants on one no-op uvloop worker behind a real router process; {per_split} requests per "
            f"weighting from {CONNECTIONS} keep-alive connections, counting {VARIANT_HEADER}; binomial 99 % "
            f"interval (z={Z_99}) around the configured share. Overhead: single-variant vs 50/50 endpoint of the "
            f"same table, interleaved, {reps} x {seconds:g} s after a warm-up round, at 1 and 8 connections."
        ),
        "load_generator": "this process: asyncio streams on uvloop (one event loop), B1's client",
        "config": {"splits": [list(s) for s in SPLITS], "requests_per_split": per_split, "connections": CONNECTIONS},
        "figures": {"shares": shares, "overhead": cost},
        "comparator": {
            "name": "binomial 99 % interval around the configured share; B1's single-variant endpoint for cost",
            "single_variant": {conns: c["single"] for conns, c in cost.items()},
        },
        "ratio": {
            **{
                f"share_A_observed_over_configured_{k.replace('/', '_')}": ratio(
                    v["observed_share_A"], v["configured_share_A"], 4
                )
                for k, v in shares.items()
            },
            "p50_1_split_over_single": latency,
            "rps_8_split_over_single": throughput,
            "meaning": "shares: observed / configured (1.0 = exact); cost: split / single variant (1.0 = free)",
        },
        "goal": {
            "inside_binomial_99": inside,
            "overhead_le": GOAL_OVERHEAD,
            "overhead_met": latency <= GOAL_OVERHEAD and throughput >= 1 / GOAL_OVERHEAD,
            "judged_at": "p50 at 1 connection, req/s at 8 connections",
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "goal": r["goal"]}, indent=1))
