"""`kamado transform` and `kamado transform-jobs` against a live server."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer, live  # noqa: F401
from tests.transform.kit import iris_rows, make_kit

runner = CliRunner()


def test_transform_command_and_job_listing(live: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    def kamado(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env={"KAMADO_URL": live.url})
        assert result.exit_code == code, result.output
        return result.output

    kit = make_kit(live.client, tmp_path / "kit")
    kit.create_model("iris")
    data = tmp_path / "data"
    data.mkdir()
    rows = iris_rows(200, 10)
    (data / "x.csv").write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    out = kit.output_uri("cli")
    args = ["transform", "iris", "--input", str(data), "--output", out, "--content-type", "text/csv"]
    args += ["--split-type", "Line", "--strategy", "MultiRecord", "--accept", "text/csv", "--job-name", "cli-job"]
    shown = kamado(*args, "--wait")
    assert "Completed" in shown and "1/1 files, 200 records done, 0 failed" in shown
    assert kit.read_output(out, "x.csv.out") == kit.predictions(rows)
    assert "cli-job" in kamado("transform-jobs", "list")
    desc = json.loads(kamado("transform-jobs", "describe", "cli-job", "--output", "json"))
    assert desc["TransformJobStatus"] == "Completed"
    assert "cannot be stopped" in kamado("transform-jobs", "stop", "cli-job", code=2)
