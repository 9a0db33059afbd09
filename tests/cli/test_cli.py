"""The CLI against a real server: thin over the SDK, JSON output, clear errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer, write_script

runner = CliRunner()


def _run(live: LiveServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"KAMADO_URL": live.url})
    return result.exit_code, result.output


def test_train_list_describe_logs_rerun(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "import sys\nprint('loss=0.25')\nprint('args', sys.argv[1:])\n")
    code, out = _run(
        live,
        "train",
        "train.py",
        "--source-dir",
        str(src),
        "--hp",
        "depth=3",
        "--metric",
        "loss=loss=([0-9.]+)",
        "--name",
        "cli-job",
        "--output",
        "json",
    )
    assert code == 0, out
    desc = json.loads(out)
    assert desc["TrainingJobStatus"] == "Completed"
    assert desc["FinalMetricDataList"][0] == {**desc["FinalMetricDataList"][0], "MetricName": "loss", "Value": 0.25}

    code, out = _run(live, "jobs", "list", "--output", "json")
    assert code == 0 and [j["TrainingJobName"] for j in json.loads(out)] == ["cli-job"]
    code, out = _run(live, "jobs", "list")
    assert code == 0 and "cli-job" in out and "Completed" in out

    code, out = _run(live, "jobs", "describe", "cli-job")
    assert code == 0 and "Completed" in out and "model.tar.gz" in out and "SourceHash" in out

    code, out = _run(live, "jobs", "logs", "cli-job")
    assert code == 0 and "args ['--depth', '3']" in out

    code, out = _run(live, "jobs", "stop", "cli-job")
    assert code == 2 and "cannot be stopped" in out

    code, out = _run(live, "jobs", "rerun", "cli-job", "--name", "cli-job-2", "--wait", "--output", "json")
    assert code == 0, out
    assert json.loads(out)["TrainingJobStatus"] == "Completed"


def test_errors_name_the_problem_and_exit_non_zero(live: LiveServer, tmp_path: Path) -> None:
    code, out = _run(live, "jobs", "list", "--output", "yaml")
    assert code == 2 and "yaml" in out
    code, out = _run(live, "jobs", "describe", "missing-job")
    assert code == 2 and "ResourceNotFound" in out and "missing-job" in out
    src = write_script(tmp_path / "src", "raise SystemExit(4)\n")
    code, out = _run(live, "train", "train.py", "--source-dir", str(src), "--name", "exits-4")
    assert code == 1 and "exited with status 4" in out, "a failed job exits 1; bad input exits 2"
    code, out = _run(live, "train", "nope.py", "--source-dir", str(src))
    assert code == 2 and "entry_point" in out
    code, out = _run(live, "train", "train.py", "--source-dir", str(src), "--hp", "no-equals-sign")
    assert code != 0 and "NAME=VALUE" in out
