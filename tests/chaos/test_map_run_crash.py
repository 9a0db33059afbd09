"""A map run survives ``kill -9`` of the server: records exactly once, work at least once, no leftovers.

A real ``kamado server`` subprocess runs a 10,000-item map run (quick variant; 50,000 items and two kills in
``make soak``) of a handler where a few items are flaky (fail their first attempt, succeed on a retry) and
two always fail (tolerated). While it runs the test watches the progress counters; once a seeded number of
items are done the server is ``kill -9``-ed and restarted on the same home. Checked afterwards:

* the progress counters were seen increasing while the run ran, before and after the kill;
* the run ends (Succeeded, within the tolerated failures), and every item appears exactly once across the
  result files, with the manifest's counts and failed list agreeing;
* every flaky item failed at least once (its marker file) and still succeeded; the two bad ones failed;
* the killed server's worker tasks ended once it died, and none is left after the last server shuts down
  (no worker process alive, no ``function/`` task left on the executor).

Seeds: ``KAMADO_CHAOS_SEEDS`` (default one seed). Each assertion names the seed and the logs directory.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from tests.chaos.test_crash_recovery import Server
from tests.live_server import task_visible_dir

from kamado.sdk.client import Client
from kamado.sdk.functions import Function, MapRun

HANDLER = """
import os, time

PIDS = os.environ["PIDS_DIR"]
MARKERS = os.environ["MARKERS_DIR"]
FLAKY = {int(x) for x in os.environ["FLAKY"].split(",")}
BAD = {int(x) for x in os.environ["BAD"].split(",")}
_seen = False


def handle(event, context):
    global _seen
    if not _seen:  # leave this worker's pid behind, so the test can check it ends
        open(os.path.join(PIDS, str(os.getpid())), "w").close()
        _seen = True
    x = event["x"]
    time.sleep(float(os.environ["SLEEP_S"]))
    if x in BAD:
        raise RuntimeError(f"item {x} always fails")
    if x in FLAKY:
        marker = os.path.join(MARKERS, str(x))
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError(f"item {x} fails the first time")
    return {"x": x, "double": 2 * x}
"""


def _seeds() -> list[int]:
    raw = os.environ.get("KAMADO_CHAOS_SEEDS", "").strip() or "5"
    return [int(s) for s in raw.split(",") if s]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:  # gone between open and read (ProcessLookupError) or before open
        return False


def _pids(directory: Path) -> set[int]:
    return {int(p.name) for p in directory.iterdir()}


def _wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _watch(run: MapRun, until: Any, timeout_s: float, trace: list[int]) -> dict[str, Any]:
    """Poll the run's progress, appending done counts to ``trace``, until ``until(progress)`` or the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        p = run.progress()
        trace.append(p["Succeeded"] + p["Failed"])
        if p["Status"] != "InProgress" or until(p):
            return p
        assert time.monotonic() < deadline, f"run stuck at {p}"
        time.sleep(0.05)


def _crash_run(tmp_path: Path, seed: int, *, n: int, kills: int, sleep_s: float) -> None:
    rng = random.Random(seed)
    home, logs = tmp_path / "home", tmp_path / "logs"
    # Written by the workers: somewhere a root server's unprivileged worker user can reach.
    pids_dir, markers = task_visible_dir("kamado-chaos-pids-"), task_visible_dir("kamado-chaos-markers-")
    logs.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text(HANDLER)
    flaky = sorted(rng.sample(range(n), 8))
    bad = sorted(rng.sample(sorted(set(range(n)) - set(flaky)), 2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    server = Server(home, logs, env)
    where = f"seed {seed}, logs in {logs}"
    traces: list[list[int]] = []
    client: Client | None = None
    try:
        url = server.start()
        client = Client(url, autostart=False)
        fn_env = {
            "PIDS_DIR": str(pids_dir),
            "MARKERS_DIR": str(markers),
            "FLAKY": ",".join(map(str, flaky)),
            "BAD": ",".join(map(str, bad)),
            "SLEEP_S": str(sleep_s),
        }
        fn = Function.create("crashy", src, "app.handle", environment=fn_env, reserved_concurrency=2, client=client)
        run = fn.map([{"x": i} for i in range(n)], tolerated_failure_percentage=1, name="crash-run")
        for k in range(kills):
            # Kill once a seeded share of the items is done (and written chunks exist), well before the end.
            target = rng.randint(n * (2 * k + 1) // (3 * kills + 2), n * (2 * k + 2) // (3 * kills + 2))
            traces.append([])
            p = _watch(run, lambda p, t=target: p["Succeeded"] + p["Failed"] >= t, 120, traces[-1])
            assert p["Status"] == "InProgress", f"{where}: the run ended before kill {k + 1}: {p}"
            assert server.kill9() is not None, f"{where}: the server was not running at kill {k + 1}"
            client.close()
            before = _pids(pids_dir)
            # The killed server's workers lose their connection and end; the next server sweeps any left.
            url = server.start()
            client = Client(url, autostart=False)
            run = MapRun("crash-run", client=client)
            assert _wait_gone(before, 30) == set(), f"{where}: workers of the killed server still run"
        traces.append([])
        final = _watch(run, lambda p: False, 120, traces[-1])
        desc = run.describe()
        assert final["Status"] == "Succeeded", f"{where}: {desc}"

        # Progress was visible throughout: each phase saw the done count go up, never down within a phase.
        for i, trace in enumerate(traces):
            assert trace == sorted(trace), f"{where}: progress went backwards in phase {i}: {trace}"
            assert len(set(trace)) >= 3, f"{where}: progress not seen moving in phase {i}: {trace}"

        # Records exactly once: every item once across the result files; the manifest agrees.
        rows = list(run.results())
        indices = [r["Index"] for r in rows]
        assert sorted(indices) == list(range(n)), f"{where}: {len(indices)} rows, {len(set(indices))} distinct"
        manifest = run.manifest()
        failed = {f["Index"]: f for f in manifest["FailedItems"]}
        assert sorted(failed) == bad, f"{where}: failed items {sorted(failed)}, expected {bad}"
        assert all(f["Error"] == "RuntimeError" for f in failed.values()), f"{where}: {failed}"
        assert manifest["Succeeded"] == n - len(bad) and manifest["Pending"] == 0, f"{where}: {manifest}"
        assert desc["ItemCounts"]["Succeeded"] == n - len(bad) and desc["ItemCounts"]["Failed"] == len(bad)
        by_index = {r["Index"]: r for r in rows}
        assert all(by_index[i]["Output"] == {"x": i, "double": 2 * i} for i in range(n) if i not in failed)
        # Work at least once: each flaky item failed once (its marker) and then succeeded on a retry.
        assert sorted(int(m.name) for m in markers.iterdir()) == flaky, f"{where}: markers"
        assert all(by_index[i]["Status"] == "SUCCEEDED" for i in flaky), f"{where}: a flaky item failed"
    finally:
        if client is not None:
            client.close()
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)  # a clean shutdown: it stops its workers itself
            if server.wait_dead(60) is None:
                server.kill9()
    leftover = _wait_gone(_pids(pids_dir), 15)
    assert leftover == set(), f"{where}: worker processes {sorted(leftover)} outlived the server"
    tasks = home / "tasks"
    left_tasks = [p.name for p in tasks.iterdir() if p.name.startswith("function%2F")] if tasks.is_dir() else []
    assert left_tasks == [], f"{where}: worker tasks left on the executor: {left_tasks}"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", _seeds())
def test_map_run_survives_kill_9(tmp_path: Path, seed: int) -> None:
    _crash_run(tmp_path, seed, n=10_000, kills=1, sleep_s=0.0005)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", _seeds())
def test_large_map_run_survives_two_kills(tmp_path: Path, seed: int) -> None:
    _crash_run(tmp_path, seed, n=50_000, kills=2, sleep_s=0.0005)
