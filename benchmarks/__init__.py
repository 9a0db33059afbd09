"""kamado benchmarks (PERFORMANCE.md): each one measures kamado and its comparator interleaved in one run and
writes ``benchmarks/results/<name>.json`` with the figures, the comparator's figures, the ratio, and the
machine (nproc, CPU model, Python version, git commit).

Run all with ``python -m benchmarks`` (``make bench``) or one with ``python -m benchmarks b5_job_start``.
``BENCH_SMOKE=1`` shrinks every benchmark to a couple of repetitions (for the smoke test; those numbers
mean nothing), and ``BENCH_RESULTS_DIR`` redirects the result files.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Pinned before anything numeric is imported, and inherited by every server and job we start.
os.environ["OMP_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
BENCHMARKS = (
    "b1_router_hop",
    "b1b_real_model",
    "b2_traffic_split",
    "b3_fanout_dispatch",
    "b4_fanout_efficiency",
    "b5_job_start",
    "b6_hpo_quality",
    "b7_hpo_efficiency",
    "b8_metric_ingest",
    "b9_autoscale",
    "b10_rollout",
    "b11_transform_throughput",
    "b12_console",
    "b13_pipelines",
    "b14_ray_job_start",
    "b15_fanout_ray",
    "b16_worker_user",
    "asl_conformance",
)
REQUIRED_KEYS = (
    "benchmark", "figures", "comparator", "ratio", "goal", "nproc", "cpu_model", "python_version",
    "git_commit", "smoke", "wall_s",
)  # fmt: skip


def smoke() -> bool:
    return os.environ.get("BENCH_SMOKE", "") not in ("", "0")


def results_dir() -> Path:
    return Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "results")


# -------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


# ---------------------------------------------------------------------------------------------- stats


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median and spread of a sample."""
    xs = [float(v) for v in values]
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), digits),
        "p95": round(percentile(xs, 95), digits),
        "p99": round(percentile(xs, 99), digits),
        "min": round(min(xs), digits),
        "max": round(max(xs), digits),
        "mean": round(statistics.fmean(xs), digits),
        "iqr": round(percentile(xs, 75) - percentile(xs, 25), digits),
        "stdev": round(statistics.stdev(xs), digits) if len(xs) > 1 else 0.0,
    }


def ratio(a: float, b: float, digits: int = 3) -> float | None:
    return round(a / b, digits) if b else None


# --------------------------------------------------------------------------------------------- output


def write_result(name: str, data: dict[str, Any], started: float) -> Path:
    out = {
        "benchmark": name,
        **data,
        **machine(),
        "smoke": smoke(),
        "wall_s": round(time.monotonic() - started, 1),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise ValueError(f"{name}: result lacks {missing}")
    path = results_dir() / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------- server


class LocalServer:
    """A real ``python -m kamado server`` on a private home, as a user would run it."""

    def __init__(self, home: Path, *, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> str:
        import httpx

        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "server.log", "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kamado",
                    "server",
                    "--home",
                    str(self.home),
                    "--port",
                    "0",
                    "--log-level",
                    "warning",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamado server exited ({self.proc.returncode}); see {self.home / 'server.log'}")
            with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                info = json.loads((self.home / "server.json").read_text())
                if info.get("pid") == self.proc.pid and httpx.get(info["url"] + "/healthz", timeout=2).is_success:
                    self.url = info["url"]
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kamado server did not start within {timeout} s; see {self.home / 'server.log'}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM first; SIGKILL if it does not exit promptly (every job has ended by the time we stop).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - t0)
