"""Map runs end to end: every item accounted for, flaky items retried, stop and redrive, bad sources."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import kamado
from kamado.core.errors import IllegalTransition, InvalidSpec
from kamado.sdk.client import Client
from kamado.sdk.functions import Function, MapRun
from tests.live_server import LiveServer, start_server, task_visible_dir

_MARKERS: dict[str, Path] = {}


def _flaky(live: LiveServer, code_dir: Path, tmp_path: Path, *, hard: bool = False, name: str = "flaky") -> Function:
    # One per test and name, as tmp_path / f"markers-{name}" was; the worker user cannot reach tmp_path itself.
    key = f"{tmp_path}/{name}"
    if key not in _MARKERS:
        _MARKERS[key] = task_visible_dir()
    markers = _MARKERS[key]
    env = {"MARKERS": str(markers), "HARD": "1" if hard else "0"}
    return Function.create(name, code_dir, "app.flaky", environment=env, reserved_concurrency=2, client=live.client)


def _check_all_accounted(run: MapRun, n: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = list(run.results())
    assert sorted(r["Index"] for r in rows) == list(range(n)), "every item exactly once"
    return rows, run.manifest()


def test_map_with_flaky_items_accounts_for_every_item(live: LiveServer, code_dir: Path, tmp_path: Path) -> None:
    fn = _flaky(live, code_dir, tmp_path)
    n = 2000
    run = fn.map([{"x": i} for i in range(n)], max_concurrency=2)
    seen_running = False
    deadline = time.monotonic() + 60
    while (p := run.progress())["Status"] == "InProgress" and time.monotonic() < deadline:
        assert p["Total"] == n
        assert p["Succeeded"] + p["Failed"] + p["Running"] + p["Pending"] == n
        seen_running = seen_running or p["Succeeded"] > 0
        time.sleep(0.05)
    desc = run.describe()
    assert desc["Status"] == "Succeeded", desc
    counts = desc["ItemCounts"]
    flaky = len([i for i in range(n) if i % 97 == 0])
    assert counts["Succeeded"] == n and counts["Failed"] == 0 and counts["Retried"] == flaky
    rows, manifest = _check_all_accounted(run, n)
    assert all(r["Output"] == r["Index"] * 2 for r in rows)
    assert {r["Index"] for r in rows if r["Attempts"] == 2} == {i for i in range(n) if i % 97 == 0}
    assert manifest["Succeeded"] == n and manifest["FailedItems"] == []


def test_failures_beyond_tolerance_fail_the_run_and_redrive_reruns_only_them(
    live: LiveServer, code_dir: Path, tmp_path: Path
) -> None:
    fn = _flaky(live, code_dir, tmp_path, hard=True)
    n = 3000
    run = fn.map([{"x": i} for i in range(n)], max_attempts=2)
    desc = run.wait(poll_s=0.05, timeout_s=60)
    assert desc["Status"] == "Failed" and desc["Error"] == "States.ExceedToleratedFailureThreshold"
    _, manifest = _check_all_accounted(run, n)
    assert [f["Index"] for f in manifest["FailedItems"]] == [999, 1999, 2999]
    assert manifest["FailedItems"][0]["Error"] == "RuntimeError"
    # Redrive with the bug fixed: only the failed items run again, successes are kept.
    live.client.delete_function("flaky")
    fixed = _flaky(live, code_dir, tmp_path, name="flaky")
    run.redrive()
    desc = run.wait(poll_s=0.05, timeout_s=60)
    assert desc["Status"] == "Succeeded" and desc["Redrives"] == 1
    _rows, manifest = _check_all_accounted(run, n)
    assert manifest["Succeeded"] == n
    assert fixed.name == "flaky"
    with pytest.raises(IllegalTransition):
        run.redrive()


def test_stop_aborts_and_redrive_finishes_the_rest(live: LiveServer, code_dir: Path) -> None:
    Function.create("sleepy", code_dir, "app.sleepy", reserved_concurrency=2, client=live.client)
    run = kamado_map(live, "sleepy", [{"s": 0.02} for _ in range(400)])
    time.sleep(0.5)
    run.stop()
    desc = run.wait(poll_s=0.05, timeout_s=30)
    assert desc["Status"] == "Aborted"
    manifest = run.manifest()
    assert manifest["Pending"] > 0 and manifest["Succeeded"] + manifest["Pending"] == 400
    with pytest.raises(IllegalTransition):
        run.stop()
    run.redrive()
    desc = run.wait(poll_s=0.05, timeout_s=60)
    assert desc["Status"] == "Succeeded"
    assert sorted(r["Index"] for r in run.results()) == list(range(400))


def kamado_map(live: LiveServer, fn: str, items: Any, **kw: Any) -> MapRun:
    return kamado.sdk.functions.map(fn, items, client=live.client, **kw)


def test_item_sources_batches_and_bad_sources(live: LiveServer, code_dir: Path, tmp_path: Path) -> None:
    Function.create("batch", code_dir, "app.batch_sum", client=live.client)
    Function.create("square", code_dir, "app.square", client=live.client)
    jl = tmp_path / "items.jsonl"
    jl.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(50)))
    run = kamado_map(live, "batch", jl, batch_size=7)
    assert run.wait(poll_s=0.05, timeout_s=30)["Status"] == "Succeeded"
    assert [r["Output"] for r in sorted(run.results(), key=lambda r: r["Index"])] == [i + 1 for i in range(50)]
    csv_file = tmp_path / "items.csv"
    csv_file.write_text("x,y\n1,a\n2,b\n")
    run = kamado_map(live, "square", csv_file)
    desc = run.wait(poll_s=0.05, timeout_s=30)
    assert desc["Status"] == "Failed"  # csv fields are strings: "1" * "1" is a TypeError, reported per item
    assert {f["Error"] for f in run.manifest()["FailedItems"]} == {"TypeError"}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n{"x": 2}\n{"x": \n')
    with pytest.raises(InvalidSpec, match="line 3"):
        kamado_map(live, "square", bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[\n {"x": 1},\n {"x": 2\n]')
    with pytest.raises(InvalidSpec, match="line 4"):
        kamado_map(live, "square", bad_json)
    with pytest.raises(InvalidSpec, match="does not exist"):
        kamado_map(live, "square", {"Uri": live.client.upload_file(jl) + "/nope.jsonl", "Format": "jsonl"})
    prefix = live.client.upload_directory(tmp_path / "fn-src")
    run = kamado_map(live, "batch", {"Uri": prefix, "Format": "prefix"}, batch_size=10)
    assert run.wait(poll_s=0.05, timeout_s=30)["Status"] == "Failed"  # items are {Key, Uri}: no "x"
    assert run.manifest()["Failed"] == 1


def test_a_map_run_survives_a_server_restart(tmp_path: Path, code_dir: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, _ = start_server(home)
    client = Client(url)
    try:
        Function.create("sleepy", code_dir, "app.sleepy", reserved_concurrency=2, client=client)
        run = kamado.sdk.functions.map("sleepy", [{"s": 0.005} for _ in range(1500)], client=client, name="survivor")
        deadline = time.monotonic() + 20
        while run.progress()["Succeeded"] < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
    server, thread, url, _ = start_server(home)
    client = Client(url)
    try:
        run = MapRun("survivor", client=client)
        assert run.wait(poll_s=0.05, timeout_s=60)["Status"] == "Succeeded"
        assert sorted(r["Index"] for r in run.results()) == list(range(1500)), "no item lost or duplicated"
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)


def test_ten_thousand_items_with_flaky_ones_all_accounted_for(live: LiveServer, code_dir: Path, tmp_path: Path) -> None:
    fn = _flaky(live, code_dir, tmp_path)
    n = 10_000
    run = fn.map([{"x": i} for i in range(n)])
    snapshots = []
    while (p := run.progress())["Status"] == "InProgress":
        assert p["Succeeded"] + p["Failed"] + p["Running"] + p["Pending"] == n
        snapshots.append(p)
        time.sleep(0.1)
    assert run.describe()["ItemCounts"]["Succeeded"] == n
    rows, manifest = _check_all_accounted(run, n)
    assert manifest["Succeeded"] == n and len(rows) == n
    assert any(0 < s["Succeeded"] < n for s in snapshots), "progress was visible while it ran"
