"""Chained map runs: one stage's succeeded outputs, in item order, are the next stage's items."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import kamado
from kamado.cli.main import app
from kamado.core.errors import InvalidSpec, NotFound
from kamado.sdk.functions import Function, MapRun
from tests.live_server import LiveServer, task_visible_dir


def _outputs(run: MapRun) -> list[object]:
    rows = sorted(run.results(), key=lambda r: r["Index"])
    return [r["Output"] for r in rows if r["Status"] == "SUCCEEDED"]


def test_a_run_chains_from_the_succeeded_outputs_of_the_previous_one(
    live: LiveServer, code_dir: Path, tmp_path: Path
) -> None:
    markers = task_visible_dir()  # the worker user of a root server cannot reach tmp_path
    env = {"MARKERS": str(markers), "HARD": "1"}
    first_fn = Function.create("double", code_dir, "app.flaky", environment=env, client=live.client)
    Function.create("inc", code_dir, "app.inc", client=live.client)
    n = 2000
    # Items 999 and 1999 always fail (tolerated): the next stage gets the other 1998 outputs, in item order.
    first = first_fn.map([{"x": i} for i in range(n)], tolerated_failure_percentage=1, name="stage-one")
    assert first.wait(poll_s=0.05, timeout_s=60)["Status"] == "Succeeded"
    expected = [2 * i for i in range(n) if i % 1000 != 999]
    assert first.outputs() == expected

    second = first.map("inc", name="stage-two")
    assert second.describe()["ItemSource"] == {"MapRun": "stage-one"}, "the run records where its items came from"
    assert second.wait(poll_s=0.05, timeout_s=60)["Status"] == "Succeeded"
    assert second.describe()["ItemCounts"]["Total"] == len(expected)
    assert _outputs(second) == [v + 1 for v in expected]

    # The same by name, through kamado.map, and a third stage chained from the second.
    by_name = kamado.map("inc", "stage-two", client=live.client)
    assert by_name.wait(poll_s=0.05, timeout_s=60)["Status"] == "Succeeded"
    assert _outputs(by_name) == [v + 2 for v in expected]


def test_chaining_from_a_run_that_is_not_a_stable_source_is_refused(live: LiveServer, code_dir: Path) -> None:
    Function.create("inc", code_dir, "app.inc", client=live.client)
    Function.create("boom", code_dir, "app.boom", client=live.client)
    Function.create("sleepy", code_dir, "app.sleepy", reserved_concurrency=1, client=live.client)

    with pytest.raises(NotFound, match="could not find map run 'nowhere'"):
        kamado.map("inc", {"MapRun": "nowhere"}, client=live.client)

    running = kamado.map("sleepy", [{"s": 0.5} for _ in range(20)], client=live.client)
    with pytest.raises(InvalidSpec, match="is InProgress") as err:
        kamado.map("inc", running, client=live.client)
    assert err.value.details == [{"field": "ItemSource.MapRun", "message": running.name}]
    running.stop()

    failed = kamado.map("boom", [1, 2, 3], client=live.client)
    assert failed.wait(poll_s=0.05, timeout_s=30)["Status"] == "Failed"
    with pytest.raises(InvalidSpec, match=r"is Failed.*redrive"):
        failed.map("inc")

    empty = kamado.map("boom", [1, 2], tolerated_failure_percentage=100, max_attempts=1, client=live.client)
    assert empty.wait(poll_s=0.05, timeout_s=30)["Status"] == "Succeeded"
    with pytest.raises(InvalidSpec, match="no succeeded results"):
        empty.map("inc")

    url = f"{live.url}/api/v1/map-runs"
    both = httpx.post(url, json={"FunctionName": "inc", "ItemSource": {"Uri": "x", "MapRun": empty.name}})
    assert both.status_code == 400 and "exactly one of Uri" in both.text
    fmt = httpx.post(url, json={"FunctionName": "inc", "ItemSource": {"MapRun": empty.name, "Format": "csv"}})
    assert fmt.status_code == 400 and "Format applies to a Uri source only" in fmt.text
    assert [r["MapRunName"] for r in live.client.list_map_runs()["MapRuns"] if r.get("FunctionName") == "inc"] == []


def test_cli_map_from_run(live: LiveServer, code_dir: Path) -> None:
    Function.create("inc", code_dir, "app.inc", client=live.client)
    first = kamado.map("inc", list(range(50)), name="cli-one", client=live.client)
    assert first.wait(poll_s=0.05, timeout_s=30)["Status"] == "Succeeded"
    runner = CliRunner()
    env = {"KAMADO_URL": live.url}
    out = runner.invoke(app, ["map", "inc", "--from-run", "cli-one", "-o", "json"], env=env)
    assert out.exit_code == 0, out.output
    desc = json.loads(out.output[out.output.index("{") :])
    second = MapRun(desc["MapRunName"], client=live.client)
    assert second.wait(poll_s=0.05, timeout_s=30)["Status"] == "Succeeded"
    assert _outputs(second) == [i + 2 for i in range(50)]
    neither = runner.invoke(app, ["map", "inc"], env={**env, "COLUMNS": "300"})
    assert neither.exit_code == 2 and "exactly one of --items or --from-run" in neither.output, neither.output
    missing = runner.invoke(app, ["map", "inc", "--from-run", "nope"], env=env)
    assert missing.exit_code != 0 and "could not find map run 'nope'" in missing.output
