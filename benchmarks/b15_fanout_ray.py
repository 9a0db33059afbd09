"""B15: B3 and B4 on the Ray executor, against the local executor in the same run (issue 7).

Two real ``kamado server`` processes with the same functions (2 warm workers each): one with the local
executor, one with ``--executor ray`` on a 2-node Ray cluster started on loopback (a head and a worker
node, 2 CPUs each: a warm function worker holds one CPU on Ray, and the two functions keep 2 workers
each). Interleaved A B A B:

- dispatch (B3's unbatched mode): no-op items per second through a map run;
- efficiency (B4's lognormal mode): Σ item CPU / (2 x wall) for CPU-bound items of lognormal length;
- fixed cost: a 1-item map run, start to Succeeded (the pool's workers are warm after the first run).

Where the overhead goes: a warm worker is reached over the same loopback socket protocol on both, so
per-item dispatch should match; what Ray adds is placing and starting worker actors (a new pool, or a
worker replaced) and the bridge round trips of polling. The machine has 2 cores shared by both servers,
the Ray cluster's own processes and the benchmark, so the figures are ratios within this one run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import log, ratio, smoke, summarize, write_result
from benchmarks.b4_fanout_efficiency import durations
from benchmarks.fanout import FanoutServer

NAME = "b15_fanout_ray"
WORKERS = 2


def run() -> tuple[Path, dict[str, Any]]:
    from kamado.testing.ray_cluster import ray_cluster

    started = time.monotonic()
    tiny = smoke()
    n_dispatch = 300 if tiny else 5_000
    n_burn = 200 if tiny else 2_000
    total_cpu_s = 1.0 if tiny else float(os.environ.get("B15_TOTAL_CPU_S", "20"))
    reps = 1 if tiny else int(os.environ.get("B15_REPS", "3"))
    rates: dict[str, list[float]] = {"local": [], "ray": []}
    efficiency: dict[str, list[float]] = {"local": [], "ray": []}
    fixed: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="kamado-b15-") as tmp, ray_cluster(workers=1, num_cpus=2) as cluster:
        ray_env = {"KAMADO_EXECUTOR": "ray", "KAMADO_RAY_ADDRESS": cluster.address}
        with (
            FanoutServer(Path(tmp), WORKERS, name="local") as local,
            FanoutServer(Path(tmp), WORKERS, env=ray_env, name="ray") as on_ray,
        ):
            servers = {"local": local, "ray": on_ray}
            ms = durations(n_burn, total_cpu_s, stragglers=False)
            cpu_s = sum(ms) / 1000.0
            uris = {
                k: (s.items_uri("noop", list(range(n_dispatch))), s.items_uri("burn", [{"ms": m} for m in ms]))
                for k, s in servers.items()
            }
            one = {k: s.items_uri("one", [0]) for k, s in servers.items()}
            log(f"{NAME}: warm-up (starts each server's workers)")
            warm = {k: s.items_uri("warm", [{"ms": 1}]) for k, s in servers.items()}
            for k, s in servers.items():
                s.map_seconds("noop", one[k])
                s.map_seconds("burn", warm[k])
            for rep in range(reps):
                for k, s in servers.items():
                    wall, _ = s.map_seconds("noop", uris[k][0])
                    rates[k].append(n_dispatch / wall)
                    wall, _ = s.map_seconds("burn", uris[k][1])
                    efficiency[k].append(cpu_s / (WORKERS * wall))
                    wall, _ = s.map_seconds("noop", one[k])
                    fixed[k].append(wall)
                parts = [
                    f"{k} {rates[k][-1]:.0f} items/s, efficiency {efficiency[k][-1]:.2f}, 1 item {fixed[k][-1]:.2f} s"
                    for k in servers
                ]
                log(f"{NAME}: rep {rep + 1}/{reps}: " + "; ".join(parts))
    figures = {
        k: {
            "dispatch_items_per_s": summarize(rates[k], 1),
            "efficiency": summarize(efficiency[k]),
            "one_item_run_s": summarize(fixed[k]),
        }
        for k in ("local", "ray")
    }
    ratios = {
        "dispatch": ratio(
            figures["ray"]["dispatch_items_per_s"]["p50"], figures["local"]["dispatch_items_per_s"]["p50"]
        ),
        "efficiency": ratio(figures["ray"]["efficiency"]["p50"], figures["local"]["efficiency"]["p50"]),
        "one_item_run": ratio(figures["ray"]["one_item_run_s"]["p50"], figures["local"]["one_item_run_s"]["p50"]),
        "meaning": "ray over local, medians: items/s, efficiency, and seconds for a 1-item run (>1 = slower)",
    }
    data = {
        "goal": {"note": "PERFORMANCE.md sets no goal for Ray; issue 7 asks for the ratio and where it goes"},
        "figures": figures,
        "comparator": {"name": "the local executor, same functions, same run", "figures": figures["local"]},
        "ratio": ratios,
        "setup": {
            "workers": WORKERS,
            "ray_nodes": 2,
            "ray_cpus_per_node": 2,
            "dispatch_items": n_dispatch,
            "burn_items": n_burn,
            "burn_cpu_s": round(cpu_s, 1),
        },
    }
    path = write_result(NAME, data, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "figures": r["figures"], "ratio": r["ratio"]}, indent=1))
