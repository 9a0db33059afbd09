"""B3 fan-out dispatch: 20k no-op items through a map run, unbatched and batched by 1,000, against
``multiprocessing.Pool(2).map`` with chunksize 1 and 1,000 in the same run (interleaved A B A B).

kamado side: a real local server, a no-op function with 2 warm workers, the items uploaded once as a
JSON-lines file; timed from ``StartMapRun`` until ``DescribeMapRun`` reports Succeeded, so it includes
reading and chunking the items, dispatch, per-chunk result files, the manifest and the status writes.
Comparator: ``Pool(2).map(noop, range(n), chunksize)`` on a pool started once (its start is not counted).
Goal (PERFORMANCE.md): tasks/s ≥ 0.5x the Pool's, each mode.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, summarize, write_result
from benchmarks.fanout import FanoutServer, noop

NAME = "b3_fanout_dispatch"
WORKERS = 2
GOAL = 0.5


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    n = 400 if tiny else 20_000
    reps = 2 if tiny else 5
    modes = {"unbatched": 1, "batched_1000": 1000 if not tiny else 100}
    kam: dict[str, list[float]] = {m: [] for m in modes}
    pool_rates: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="kamado-b3-") as tmp, FanoutServer(Path(tmp), WORKERS) as srv:
        uri = srv.items_uri("noop", list(range(n)))
        with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
            log(f"{NAME}: warm-up")
            srv.map_seconds("noop", uri)
            pool.map(noop, range(n), chunksize=1)
            for rep in range(reps):
                for mode, size in modes.items():
                    wall, _ = srv.map_seconds("noop", uri, batch_size=size)
                    kam[mode].append(n / wall)
                    t0 = time.perf_counter()
                    pool.map(noop, range(n), chunksize=size)
                    pool_rates[mode].append(n / (time.perf_counter() - t0))
                log(f"{NAME}: rep {rep + 1}/{reps}: " + ", ".join(f"{m} {kam[m][-1]:.0f}/s" for m in modes))
    figures = {m: {"items": n, "tasks_per_s": summarize(kam[m], 1)} for m in modes}
    comparator = {
        m: {"name": f"Pool({WORKERS}).map chunksize={modes[m]}", "tasks_per_s": summarize(pool_rates[m], 1)}
        for m in modes
    }
    ratios: dict[str, Any] = {
        m: ratio(figures[m]["tasks_per_s"]["p50"], comparator[m]["tasks_per_s"]["p50"]) for m in modes
    }
    ratios["meaning"] = "kamado tasks/s over Pool tasks/s (median of each)"
    goal = {
        "ratio_at_least": GOAL,
        "met": all(v is not None and v >= GOAL for k, v in ratios.items() if k != "meaning"),
    }
    data = {"figures": figures, "comparator": comparator, "ratio": ratios, "goal": goal, "workers": WORKERS}
    path = write_result(NAME, data, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"]}, indent=1))
