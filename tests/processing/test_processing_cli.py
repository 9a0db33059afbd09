"""``kamado processing ...`` against a real server: run with sharded inputs, describe, list, logs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer

runner = CliRunner()

SCRIPT = """
import os, sys
files = sorted(os.listdir("/opt/ml/processing/input/data"))
host = os.environ["CURRENT_HOST"]
open(f"/opt/ml/processing/out/{host}.txt", "w").write(",".join(files))
print(host, "saw", files, sys.argv[1:])
"""


def test_processing_cli_round_trip(live: LiveServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        (data / f"{i}.csv").write_text("x\n")
    script = tmp_path / "prep.py"
    script.write_text(SCRIPT)
    env = {"KAMADO_URL": live.url}
    args = ["processing", "run", str(script), "--input", f"data={data}:sharded", "--output"]
    args += ["out=/opt/ml/processing/out", "--instance-count", "2", "--name", "prep-1", "-o", "json", "--", "--k", "v"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    desc = json.loads(result.output)
    assert desc["ProcessingJobStatus"] == "Completed"
    assert desc["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert desc["AppSpecification"]["ContainerArguments"] == ["--k", "v"]
    listed = runner.invoke(app, ["processing", "list", "-o", "json"], env=env)
    assert [j["ProcessingJobName"] for j in json.loads(listed.output)] == ["prep-1"]
    logs = runner.invoke(app, ["processing", "logs", "prep-1"], env=env).output
    assert "[algo-1] algo-1 saw ['0.csv', '2.csv']" in logs and "[algo-2] algo-2 saw ['1.csv', '3.csv']" in logs
    shown = runner.invoke(app, ["processing", "describe", "prep-1"], env=env)
    assert "Completed" in shown.output and "algo-2: Succeeded" in shown.output
    missing = runner.invoke(app, ["processing", "describe", "nope"], env=env)
    assert missing.exit_code == 2 and "Could not find processing job 'nope'" in missing.output
