"""``kamado pipelines`` against a real server: create (with every validation error shown), start and
follow, list, describe, history, stop, delete."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()

CHAIN = {
    "StartAt": "Add",
    "States": {
        "Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.x, 1)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def _run(live: LiveServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"KAMADO_URL": live.url})
    return result.exit_code, result.stdout, result.stderr


def test_pipeline_lifecycle_from_the_cli(live: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}))
    code, out, err = _run(live, "pipelines", "create", "bad", str(bad))
    assert code != 0 and "/States/A/Next" in out + err

    good = tmp_path / "chain.json"
    good.write_text(json.dumps(CHAIN))
    code, out, err = _run(live, "pipelines", "create", "chain", str(good))
    assert code == 0, out + err
    code, out, err = _run(live, "pipelines", "start", "chain", "--input", '{"x": 41}', "--name", "r1", "--wait")
    assert code == 0, out + err
    assert "Add" in out and "Done" in out and "SUCCEEDED" in out and '{"sum": 42}' in out

    code, out, _ = _run(live, "pipelines", "executions", "chain", "--output", "json")
    assert code == 0 and [(e["name"], e["status"]) for e in json.loads(out)] == [("r1", "SUCCEEDED")]
    code, out, _ = _run(live, "pipelines", "history", "chain", "r1", "--output", "json")
    assert json.loads(out)[0]["type"] == "ExecutionStarted" and json.loads(out)[-1]["type"] == "ExecutionSucceeded"
    code, out, _ = _run(live, "pipelines", "list", "--output", "json")
    assert [m["name"] for m in json.loads(out)] == ["chain"]
    code, out, err = _run(live, "pipelines", "start", "chain", "--input", "{not json")
    assert code != 0 and "--input is not JSON" in out + err

    nap = tmp_path / "nap.json"
    nap.write_text(json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}))
    assert _run(live, "pipelines", "create", "nap", str(nap))[0] == 0
    assert _run(live, "pipelines", "start", "nap", "--name", "long")[0] == 0
    time.sleep(0.3)
    code, out, err = _run(live, "pipelines", "stop", "nap", "long", "--cause", "enough")
    assert code == 0, out + err
    deadline = time.monotonic() + 20
    while True:
        code, out, _ = _run(live, "pipelines", "execution", "nap", "long", "--output", "json")
        if json.loads(out)["status"] == "ABORTED":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert json.loads(out)["cause"] == "enough"
    assert _run(live, "pipelines", "delete", "nap")[0] == 0
    code, out, err = _run(live, "pipelines", "describe", "nap")
    assert code != 0 and "does not exist" in out + err


def test_schedules_and_triggers_from_the_cli(live: LiveServer, tmp_path: Path) -> None:
    good = tmp_path / "chain.json"
    good.write_text(json.dumps(CHAIN))
    assert _run(live, "pipelines", "create", "chain", str(good))[0] == 0
    code, out, err = _run(live, "pipelines", "schedules", "create", "daily", "cron(0 3 * * ? *)", "chain",
                          "--timezone", "Europe/Berlin", "--input", '{"x": 1}')  # fmt: skip
    assert code == 0 and "next fire: " in out and "T0" in out, out + err
    code, out, err = _run(live, "pipelines", "schedules", "create", "bad", "every day", "chain")
    assert code != 0 and "not a valid schedule expression" in out + err
    code, out, _ = _run(live, "pipelines", "schedules", "list", "--output", "json")
    [daily] = json.loads(out)
    assert daily["Name"] == "daily" and daily["State"] == "ENABLED" and daily["NextFireTime"]
    assert _run(live, "pipelines", "schedules", "enable", "daily", "--off")[0] == 0
    code, out, _ = _run(live, "pipelines", "schedules", "list", "--output", "json")
    assert json.loads(out)[0]["State"] == "DISABLED" and json.loads(out)[0]["NextFireTime"] is None
    assert _run(live, "pipelines", "schedules", "delete", "daily")[0] == 0

    root = live.client.info()["artifactStore"].rstrip("/")
    code, out, err = _run(live, "pipelines", "triggers", "create", "landing", f"{root}/landing", "chain")
    assert code == 0 and "0 object(s) already there" in out, out + err
    code, out, _ = _run(live, "pipelines", "triggers", "list", "--output", "json")
    assert [t["Name"] for t in json.loads(out)] == ["landing"]
    assert _run(live, "pipelines", "triggers", "delete", "landing")[0] == 0
