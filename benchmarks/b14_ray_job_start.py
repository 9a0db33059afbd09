"""B14 Ray job start: create -> Training and create -> first log line, Ray executor against the local one.

Both sides are a real ``python -m kamado server`` on a private home (SQLite, local artifacts: only the
executor differs), one with ``--executor local`` and one with ``--executor ray`` on a loopback Ray cluster
this benchmark starts (head + one worker node, 2 CPUs each, ``kamado.testing.ray_cluster``). The job is
b5's trivial script-mode job (its first statement prints ``time.time()``), source uploaded once.

Per job: ``to_training`` = the job's own ``Training`` SecondaryStatus start (attempt recorded, task handed
to the executor) minus the client's clock just before the create call; ``first_line`` = the script's
printed timestamp minus that same clock (same machine, same clock); ``visible`` = when the line came back
through ``training_job_logs``. Sequential, interleaved local/ray after warm-up. The figures are Ray's,
the comparator is local, the ratio is Ray / local (1.0 = no added latency). No goal is set by the issue;
this records the cost of placing a task through a Ray actor.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result
from benchmarks.b5_job_start import SCRIPT, JobStarter

NAME = "b14_ray_job_start"


def _once(starter: JobStarter) -> dict[str, float]:
    row = starter.once()
    return {**row, "to_training_ms": row["queued_ms"] + row["prepare_ms"]}


def _figures(rows: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "unit": "ms",
        "create_to_training": summarize([r["to_training_ms"] for r in rows], 2),
        "create_to_first_line": summarize([r["first_line_ms"] for r in rows], 2),
        "first_line_visible_via_api": summarize([r["visible_ms"] for r in rows], 2),
        "create_to_completed_seen": summarize([r["job_end_ms"] for r in rows], 2),
    }


def run() -> tuple[Path, dict[str, Any]]:
    from kamado import Client
    from kamado.testing.ray_cluster import ray_cluster

    started = time.monotonic()
    n = 2 if smoke() else 10
    warmup = 1 if smoke() else 2
    with tempfile.TemporaryDirectory(prefix="kamado-b14-") as tmp, ray_cluster(workers=1, num_cpus=2) as cluster:
        src = Path(tmp) / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        local = LocalServer(Path(tmp) / "local", env={"KAMADO_EXECUTOR": "local"})
        ray = LocalServer(Path(tmp) / "ray", env={"KAMADO_EXECUTOR": "ray", "KAMADO_RAY_ADDRESS": cluster.address})
        with local, ray:
            starters = {}
            for side, server in (("local", local), ("ray", ray)):
                with Client(server.url, autostart=False) as c:
                    starters[side] = JobStarter(server.url, c.upload_directory(src))
            log(f"{NAME}: warm-up ({warmup} per side)")
            for _ in range(warmup):
                for starter in starters.values():
                    _once(starter)
            rows: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
            log(f"{NAME}: {n} jobs per side, interleaved local/ray")
            for _ in range(n):
                for side, starter in starters.items():
                    rows[side].append(_once(starter))
    ray_fig, local_fig = _figures(rows["ray"]), _figures(rows["local"])
    p50 = {
        key: {"ray": ray_fig[f"create_to_{key}"]["p50"], "local": local_fig[f"create_to_{key}"]["p50"]}
        for key in ("training", "first_line")
    }
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "Two `python -m kamado server` processes (SQLite, local artifacts), --executor local and --executor "
            "ray on a loopback Ray cluster (head + 1 worker node, 2 CPUs each); b5's trivial job via "
            "Client.create_training_job; create -> Training from the job's SecondaryStatusTransitions, "
            "create -> first line from the script's own time.time(); each job waited to completion; "
            f"interleaved local/ray after {warmup} warm-up job(s) per side; OMP_NUM_THREADS=1."
        ),
        "load_generator": "this process",
        "config": {"jobs_per_side": n, "warmup": warmup, "ray_nodes": 2, "cpus_per_node": 2},
        "figures": {"executor": "ray", **ray_fig},
        "comparator": {"name": "the same server with --executor local", **local_fig},
        "added_by_ray_p50_ms": {k: round(v["ray"] - v["local"], 2) for k, v in p50.items()},
        "ratio": {
            "create_to_training_p50": ratio(p50["training"]["ray"], p50["training"]["local"]),
            "create_to_first_line_p50": ratio(p50["first_line"]["ray"], p50["first_line"]["local"]),
            "meaning": "Ray latency / local latency (lower is better; 1.0 = no added latency)",
        },
        "goal": {"note": "none set by the issue; recorded as the job start latency on Ray vs local"},
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "added_by_ray_p50_ms": r["added_by_ray_p50_ms"]}, indent=1))
