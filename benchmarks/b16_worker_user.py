"""B16 worker user: what running each task as a uid of its own (behind the tmpfs veil) costs a job's start.

Two real local servers side by side, one with ``KAMADO_WORKER_USER=auto`` (a root server: each task gets a
uid of its own, its trees are chowned, the supervisor mounts the veil and switches user before exec) and
one with ``KAMADO_WORKER_USER=root`` (the opt-out: tasks run as root, as before), measured the way B5 does
(submit -> the training script's first line, through the real API), interleaved A B per job.

Only meaningful when the benchmark runs as root: otherwise both servers run tasks as the benchmark's own
user and the ratio is ~1 by construction (recorded as such, with ``as_root: false``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result
from benchmarks.b5_job_start import SCRIPT, JobStarter

NAME = "b16_worker_user"


def _server(root: Path, mode: str) -> LocalServer:
    return LocalServer(root / f"home-{mode}", env={"KAMADO_MAX_CPUS": "16", "KAMADO_WORKER_USER": mode})


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    n, warmup = (2, 1) if tiny else (40, 3)
    with tempfile.TemporaryDirectory(prefix="kamado-b16-") as tmp:
        root = Path(tmp)
        src = root / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        own, shared = _server(root, "auto"), _server(root, "root")
        with own, shared:
            from kamado import Client

            starters = {}
            for label, server in (("auto", own), ("root", shared)):
                with Client(server.url, autostart=False) as c:
                    starters[label] = JobStarter(server.url, c.upload_directory(src))
            log(f"{NAME}: warm-up ({warmup} of each)")
            for _ in range(warmup):
                starters["auto"].once()
                starters["root"].once()
            rows: dict[str, list[dict[str, float]]] = {"auto": [], "root": []}
            log(f"{NAME}: {n} jobs on each server, interleaved")
            for _ in range(n):
                rows["auto"].append(starters["auto"].once())
                rows["root"].append(starters["root"].once())

    def stat(label: str, key: str) -> dict[str, float]:
        return summarize([r[key] for r in rows[label]], 2)

    first, first_root = stat("auto", "first_line_ms"), stat("root", "first_line_ms")
    done, done_root = stat("auto", "job_end_ms"), stat("root", "job_end_ms")
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "two `python -m kamado server` on temporary homes (KAMADO_WORKER_USER=auto and =root), source "
            "uploaded once to each; each sample is B5's JobStarter.once() (create over HTTP, first line's own "
            f"time.time() minus the client's clock, then wait for the end); A B interleaved after {warmup} "
            "warm-up jobs each."
        ),
        "load_generator": "this process",
        "config": {"jobs": n, "warmup": warmup, "python": sys.executable, "as_root": os.geteuid() == 0},
        "figures": {
            "unit": "ms",
            "worker_uid_per_task": {"submit_to_first_line": first, "submit_to_job_completed_seen": done},
        },
        "comparator": {
            "name": "KAMADO_WORKER_USER=root (tasks run as the root server itself; no veil, no chown)",
            "unit": "ms",
            "submit_to_first_line": first_root,
            "submit_to_job_completed_seen": done_root,
        },
        "ratio": {
            "first_line_p50": ratio(first["p50"], first_root["p50"]),
            "first_line_p95": ratio(first["p95"], first_root["p95"]),
            "job_completed_p50": ratio(done["p50"], done_root["p50"]),
            "meaning": "per-task uid / tasks as root (lower is better; 1.0 = the sandbox costs nothing)",
        },
        "added_ms": {"first_line_p50": round(first["p50"] - first_root["p50"], 2)},
        "goal": {"note": "no stated goal; B5's budget is floor + 50 ms for the whole start path"},
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "added_ms": r["added_ms"]}, indent=1))
