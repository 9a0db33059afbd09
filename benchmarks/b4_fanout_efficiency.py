"""B4 fan-out efficiency: 9,000 CPU-bound items with lognormal durations (about 2 CPU-minutes), plus a
variant where 1% of the items are stragglers 20x longer; parallel efficiency against ``Pool.imap_unordered``.

Each item burns its duration in CPU time (``time.process_time``), so Σ item CPU is known exactly.
Efficiency = Σ item CPU / (workers * wall), wall from ``StartMapRun`` to Succeeded (kamado) or from the
first submit to the last result (``Pool(2).imap_unordered``, chunksize 1, pool started once). Both run
interleaved in the same process tree on the same cores. Goal (PERFORMANCE.md): ≥ 0.95 (≥ 0.90 with
stragglers); tail no worse than the Pool's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, summarize, write_result
from benchmarks.fanout import FanoutServer, burn

NAME = "b4_fanout_efficiency"
WORKERS = 2
GOALS = {"lognormal": 0.95, "stragglers": 0.90}


def durations(n: int, total_cpu_s: float, *, stragglers: bool, seed: int = 4) -> list[float]:
    """Lognormal item durations (ms) scaled to ``total_cpu_s``; 1% stragglers 20x longer if asked."""
    rng = random.Random(seed)
    raw = [rng.lognormvariate(0.0, 1.0) for _ in range(n)]
    if stragglers:
        for i in rng.sample(range(n), max(1, n // 100)):
            raw[i] *= 20
    scale = total_cpu_s * 1000.0 / sum(raw)
    return [round(r * scale, 3) for r in raw]


def _pool_wall(pool: Any, ms: list[float]) -> float:
    t0 = time.perf_counter()
    for _ in pool.imap_unordered(burn, ms, chunksize=1):
        pass
    return time.perf_counter() - t0


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    n = 300 if tiny else 9000
    total = 1.0 if tiny else float(os.environ.get("B4_TOTAL_CPU_S", "120"))
    reps = 1 if tiny else int(os.environ.get("B4_REPS", "2"))
    figures: dict[str, Any] = {}
    comparator: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    met = {}
    with (
        tempfile.TemporaryDirectory(prefix="kamado-b4-") as tmp,
        FanoutServer(Path(tmp), WORKERS) as srv,
        multiprocessing.get_context("fork").Pool(WORKERS) as pool,
    ):
        for variant, goal in GOALS.items():
            ms = durations(n, total, stragglers=variant == "stragglers")
            cpu_s = sum(ms) / 1000.0
            uri = srv.items_uri(variant, [{"ms": m} for m in ms])
            kam: list[float] = []
            ref: list[float] = []
            for rep in range(reps):
                wall, _ = srv.map_seconds("burn", uri)
                kam.append(cpu_s / (WORKERS * wall))
                ref.append(cpu_s / (WORKERS * _pool_wall(pool, ms)))
                log(f"{NAME}: {variant} rep {rep + 1}/{reps}: kamado {kam[-1]:.3f}, Pool {ref[-1]:.3f}")
            figures[variant] = {"items": n, "item_cpu_s": round(cpu_s, 1), "efficiency": summarize(kam)}
            comparator[variant] = {"name": "Pool(2).imap_unordered chunksize=1", "efficiency": summarize(ref)}
            ratios[variant] = ratio(figures[variant]["efficiency"]["p50"], comparator[variant]["efficiency"]["p50"])
            met[variant] = figures[variant]["efficiency"]["p50"] >= goal
    ratios["meaning"] = "kamado efficiency over the Pool's (median of each)"
    data = {
        "figures": figures,
        "comparator": comparator,
        "ratio": ratios,
        "goal": {"efficiency_at_least": GOALS, "met": met},
        "workers": WORKERS,
    }
    path = write_result(NAME, data, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "figures": r["figures"], "ratio": r["ratio"]}, indent=1))
