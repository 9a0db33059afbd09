"""B5 job start: submit -> the training script's first line, against a bare ``python -c`` as the floor.

kamado side: ``Client.create_training_job`` over HTTP to a real local server (private home, the source
directory uploaded once up front, content-addressed, so what is measured is the start path), for a script
whose first statement prints ``time.time()``. Latency = that timestamp - the client's clock just before
the create call (same machine, same clock). We also report how long the create call took to be acked and
when the line became visible through ``training_job_logs``.

Comparator (same run, interleaved A B A B): ``subprocess.run([sys.executable, "-c", "import time;
print(time.time())"])`` - the cost of starting the same interpreter with nothing around it.

Sequential: 50 jobs one after another (each waited to the end). Concurrent: rounds of 10 jobs submitted at
once from 10 threads, against rounds of 10 concurrent ``subprocess.run``. Goal (PERFORMANCE.md):
p50 <= floor p50 + 50 ms, p95 <= 2 x p50.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result

NAME = "b5_job_start"
MARK = "B5_FIRST_LINE"
SCRIPT = f"import time; print({MARK!r}, repr(time.time()), flush=True)\n"
FLOOR_CMD = [sys.executable, "-c", "import time; print(time.time())"]
GOAL_ADDED_MS = 50.0


def _floor_once() -> float:
    t0 = time.time()
    out = subprocess.run(FLOOR_CMD, capture_output=True, text=True, check=True).stdout
    return (float(out.strip()) - t0) * 1000.0


class JobStarter:
    def __init__(self, url: str, source_uri: str) -> None:
        self.url = url
        self.source_uri = source_uri
        self._n = 0
        self._lock = threading.Lock()

    def _name(self) -> str:
        with self._lock:
            self._n += 1
            return f"b5-{int(time.time())}-{self._n:04d}"

    def once(self) -> dict[str, float]:
        """One job: submit, read the first line's timestamp from the job log, wait for the job to end."""
        from kamado import Client

        name = self._name()
        req = {
            "TrainingJobName": name,
            "HyperParameters": {
                "sagemaker_program": json.dumps("train.py"),
                "sagemaker_submit_directory": json.dumps(self.source_uri),
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        }
        with Client(self.url, autostart=False) as c:
            t_submit = time.time()
            c.create_training_job(req)
            t_ack = time.time()
            first = seen = None
            after = 0
            deadline = time.monotonic() + 120
            while True:
                page = c.training_job_logs(name, after=after, wait=10)
                after = page["NextSeq"]
                for ev in page["Events"]:
                    for line in ev["Message"].splitlines():
                        if first is None and line.startswith(MARK):
                            first, seen = float(line.split()[1]), time.time()
                if page["Complete"] and first is not None:
                    break
                if page["Complete"] or time.monotonic() > deadline:
                    desc = c.describe_training_job(name)
                    raise RuntimeError(
                        f"job {name} ended {desc['TrainingJobStatus']} without its first line: "
                        f"{desc.get('FailureReason')}"
                    )
            t_end = time.time()
            status = page["TrainingJobStatus"]
            if status != "Completed":
                raise RuntimeError(f"job {name} ended {status}")
            marks = _transition_starts(c.describe_training_job(name))
        assert seen is not None
        picked, launched = marks.get("Downloading", t_submit), marks.get("Training", first)
        return {
            "queued_ms": (picked - t_submit) * 1000.0,
            "prepare_ms": (launched - picked) * 1000.0,
            "exec_ms": (first - launched) * 1000.0,
            "first_line_ms": (first - t_submit) * 1000.0,
            "create_ack_ms": (t_ack - t_submit) * 1000.0,
            "visible_ms": (seen - t_submit) * 1000.0,
            "job_end_ms": (t_end - t_submit) * 1000.0,
        }


def _transition_starts(desc: dict[str, Any]) -> dict[str, float]:
    """First StartTime of each SecondaryStatus, as epoch seconds."""
    out: dict[str, float] = {}
    for t in desc.get("SecondaryStatusTransitions", []):
        if t.get("StartTime") and t["Status"] not in out:
            out[t["Status"]] = datetime.fromisoformat(t["StartTime"]).timestamp()
    return out


def _concurrently(fn: Any, n: int) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _breakdown(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Where the time goes, from the job's own SecondaryStatusTransitions (server clock = client clock)."""
    return {
        "queued_until_picked_up_ms": summarize([r["queued_ms"] for r in rows], 2)["p50"],
        "prepare_until_attempt_recorded_ms": summarize([r["prepare_ms"] for r in rows], 2)["p50"],
        "attempt_to_first_line_ms": summarize([r["exec_ms"] for r in rows], 2)["p50"],
        "note": "queued = create -> reconciler starts the job (Downloading); prepare = Downloading -> "
        "Training (inputs materialised, attempt recorded); attempt_to_first_line = supervisor start, "
        "interpreter start, first statement",
    }


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    n_seq = 2 if tiny else 50
    warmup = 1 if tiny else 3
    conc_width = 2 if tiny else 10
    conc_rounds = 1 if tiny else 5
    with tempfile.TemporaryDirectory(prefix="kamado-b5-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        # Capacity for every concurrent job at once: the bench measures start latency, not queueing.
        server = LocalServer(Path(tmp) / "home", env={"KAMADO_MAX_CPUS": str(max(16, conc_width))})
        with server:
            from kamado import Client

            with Client(server.url, autostart=False) as c:
                source_uri = c.upload_directory(src)  # once: content-addressed, later jobs reuse it
            starter = JobStarter(server.url, source_uri)
            log(f"{NAME}: warm-up ({warmup} of each)")
            for _ in range(warmup):
                starter.once()
                _floor_once()
            seq_jobs: list[dict[str, float]] = []
            seq_floor: list[float] = []
            log(f"{NAME}: {n_seq} sequential, interleaved with the floor")
            for _ in range(n_seq):
                seq_jobs.append(starter.once())
                seq_floor.append(_floor_once())
            conc_jobs: list[list[dict[str, float]]] = []
            conc_floor: list[list[float]] = []
            log(f"{NAME}: {conc_rounds} rounds of {conc_width} concurrent (+1 warm-up round)")
            _concurrently(starter.once, conc_width)
            _concurrently(_floor_once, conc_width)
            for _ in range(conc_rounds):
                conc_jobs.append(_concurrently(starter.once, conc_width))
                conc_floor.append(_concurrently(_floor_once, conc_width))

    def col(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    flat_conc = [r for rnd in conc_jobs for r in rnd]
    flat_conc_floor = [x for rnd in conc_floor for x in rnd]
    seq = summarize(col(seq_jobs, "first_line_ms"), 2)
    seq_f = summarize(seq_floor, 2)
    conc = summarize(col(flat_conc, "first_line_ms"), 2)
    conc_f = summarize(flat_conc_floor, 2)
    block = max(1, n_seq // 5)
    figures = {
        "unit": "ms",
        "sequential": {
            "submit_to_first_line": seq,
            "create_acked": summarize(col(seq_jobs, "create_ack_ms"), 2),
            "first_line_visible_via_api": summarize(col(seq_jobs, "visible_ms"), 2),
            "submit_to_job_completed_seen": summarize(col(seq_jobs, "job_end_ms"), 2),
            "breakdown_p50": _breakdown(seq_jobs),
            "block_p50s": [
                summarize(col(seq_jobs[i : i + block], "first_line_ms"), 2)["p50"] for i in range(0, n_seq, block)
            ],
        },
        "concurrent": {
            "width": conc_width,
            "rounds": conc_rounds,
            "submit_to_first_line": conc,
            "create_acked": summarize(col(flat_conc, "create_ack_ms"), 2),
            "first_line_visible_via_api": summarize(col(flat_conc, "visible_ms"), 2),
            "breakdown_p50": _breakdown(flat_conc),
            "round_p50s": [summarize(col(r, "first_line_ms"), 2)["p50"] for r in conc_jobs],
        },
    }
    comparator = {
        "name": "floor: subprocess.run([sys.executable, '-c', 'import time; print(time.time())'])",
        "unit": "ms",
        "sequential": {
            **seq_f,
            "block_p50s": [summarize(seq_floor[i : i + block], 2)["p50"] for i in range(0, n_seq, block)],
        },
        "concurrent": {**conc_f, "round_p50s": [summarize(r, 2)["p50"] for r in conc_floor]},
    }
    added = {
        "sequential_p50_ms": round(seq["p50"] - seq_f["p50"], 2),
        "sequential_p95_ms": round(seq["p95"] - seq_f["p95"], 2),
        "concurrent_p50_ms": round(conc["p50"] - conc_f["p50"], 2),
        "concurrent_p95_ms": round(conc["p95"] - conc_f["p95"], 2),
    }
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "kamado: Client.create_training_job over HTTP (keep-alive, one client per job) to "
            "`python -m kamado server` on a temporary home, source uploaded once; latency = first line's "
            "own time.time() minus the client's time.time() just before the create call; each job waited "
            "to completion before the next (sequential) or round (concurrent). Floor: subprocess.run of the "
            f"same interpreter. Interleaved A B per sample/round after {warmup} warm-up sample(s) and one "
            "warm-up round; OMP_NUM_THREADS=1."
        ),
        "load_generator": "this process (threads for the concurrent rounds)",
        "config": {
            "sequential": n_seq,
            "warmup": warmup,
            "concurrent_width": conc_width,
            "concurrent_rounds": conc_rounds,
            "python": sys.executable,
        },
        "figures": figures,
        "comparator": comparator,
        "added_over_floor": added,
        "ratio": {
            "sequential_p50": ratio(seq["p50"], seq_f["p50"]),
            "sequential_p95": ratio(seq["p95"], seq_f["p95"]),
            "concurrent_p50": ratio(conc["p50"], conc_f["p50"]),
            "concurrent_p95": ratio(conc["p95"], conc_f["p95"]),
            "meaning": "kamado latency / floor latency (lower is better; 1.0 = no overhead)",
        },
        "goal": {
            "p50_le_floor_plus_ms": GOAL_ADDED_MS,
            "p95_le_2x_p50": True,
            "sequential_p50_met": added["sequential_p50_ms"] <= GOAL_ADDED_MS,
            "sequential_p95_met": seq["p95"] <= 2 * seq["p50"],
            "concurrent_p50_met": added["concurrent_p50_ms"] <= GOAL_ADDED_MS,
            "concurrent_p95_met": conc["p95"] <= 2 * conc["p50"],
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "added_over_floor": r["added_over_floor"]}, indent=1))
