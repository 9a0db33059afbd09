"""``kamado functions ...`` and ``kamado map`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer

runner = CliRunner()


def test_functions_cli_round_trip(live: LiveServer, code_dir: Path, tmp_path: Path) -> None:
    env = {"KAMADO_URL": live.url}
    made = runner.invoke(app, ["functions", "create", "sq", str(code_dir), "--handler", "app.square"], env=env)
    assert made.exit_code == 0, made.output
    bad = runner.invoke(app, ["functions", "create", "nope", str(code_dir), "--handler", "app.absent"], env=env)
    assert bad.exit_code == 2 and "cannot be imported" in bad.output
    listed = runner.invoke(app, ["functions", "list", "-o", "json"], env=env)
    assert [f["FunctionName"] for f in json.loads(listed.output)] == ["sq"]
    out = runner.invoke(app, ["functions", "invoke", "sq", "--payload", '{"x": 4}'], env=env)
    assert out.exit_code == 0 and json.loads(out.output) == 16
    failed = runner.invoke(app, ["functions", "invoke", "sq", "--payload", "{}"], env=env)
    assert failed.exit_code == 1 and "KeyError" in failed.output
    assert runner.invoke(app, ["functions", "dead-letters", "sq", "-o", "json"], env=env).output.strip() == "[]"

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(300)))
    ran = runner.invoke(app, ["map", "sq", "--items", str(items), "--batch-size", "1"], env=env)
    assert ran.exit_code == 0, ran.output
    assert "Succeeded" in ran.output and "300 succeeded, 0 failed" in ran.output
