"""``kamado tune`` and ``kamado tuning ...`` against a real server: thin over the SDK, JSON output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kamado.cli.main import _parse_range, app
from kamado.sdk.tuner import CategoricalParameter, ContinuousParameter, IntegerParameter
from tests.live_server import LiveServer, write_script

runner = CliRunner()

SCRIPT = """
import sys
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
assert a["--epochs"] == "3", a
score = -(float(a["-x"]) - 0.3) ** 2 + (0.1 if a["-k"] == "b" else 0) + 0.01 * int(a["--nn"])  # -k: one letter
print(f"score={score:.6f}")
"""


def _run(live: LiveServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"KAMADO_URL": live.url})
    return result.exit_code, result.output


def _tune(
    live: LiveServer, src: Path, *extra: str, ranges: tuple[str, ...] = ("x=0:1", "k=a,b", "nn=int:1:3")
) -> tuple[int, str]:
    return _run(
        live,
        "tune",
        "train.py",
        "--source-dir",
        str(src),
        "--objective",
        "score",
        "--metric",
        "score=score=([-0-9.]+)",
        *(arg for r in ranges for arg in ("--range", r)),
        "--hp",
        "epochs=3",
        "--max-parallel",
        "2",
        "--seed",
        "1",
        *extra,
    )


def test_tune_describe_list_stop(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", SCRIPT)
    code, out = _tune(live, src, "--strategy", "Random", "--max-jobs", "4", "--name", "cli-tune", "--output", "json")
    assert code == 0, out
    desc = json.loads(out)
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["HyperParameterTuningJobConfig"]["RandomSeed"] == 1
    trials = desc["TrainingJobSummaries"]
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert len(trials) == 4 and values == sorted(values, reverse=True), "results best first"
    assert trials[0]["TrainingJobName"] == desc["BestTrainingJob"]["TrainingJobName"]
    assert {t["TunedHyperParameters"]["k"] for t in trials} <= {'"a"', '"b"'}

    code, out = _run(live, "tuning", "describe", "cli-tune")
    assert code == 0, out
    assert "Completed" in out and "Random" in out and "Best: cli-tune-" in out
    assert "Trials: 4/4 done, 0 running, 0 failed" in out
    assert "Trials, best first" in out and out.count("cli-tune-0") >= 4

    code, out = _run(live, "tuning", "describe", "cli-tune", "--watch", "--top", "2")
    assert code == 0 and "[kamado] tuning cli-tune: 4/4 done" in out and "(2 of 4)" in out

    code, out = _run(live, "tuning", "list", "--output", "json")
    assert code == 0 and [j["HyperParameterTuningJobName"] for j in json.loads(out)] == ["cli-tune"]
    code, out = _run(live, "tuning", "list")
    assert code == 0 and "cli-tune" in out and "Completed" in out

    code, out = _run(live, "tuning", "stop", "cli-tune")
    assert code == 2 and "IllegalTransition" in out and "cannot be stopped" in out
    code, out = _run(live, "tuning", "describe", "nope")
    assert code == 2 and "ResourceNotFound" in out


def test_tune_shows_progress_and_a_results_table_when_not_a_terminal(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", SCRIPT)
    code, out = _tune(
        live, src, "--strategy", "Grid", "--name", "grid-cli", ranges=("x=cat:0.3", "k=a,b", "nn=int:1:3")
    )
    assert code == 0, out
    assert "Tuning job grid-cli created" in out
    assert "[kamado] tuning grid-cli: 0/6 done" in out and "6/6 done, 0 running, 0 failed" in out
    assert "Best: grid-cli-" in out and "k=b" in out and "nn=3" in out
    assert "Trials, best first" in out


def test_tune_failures_and_bad_input_exit_codes(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "print('no score here')\n")
    code, out = _tune(live, src, "--strategy", "Random", "--max-jobs", "2", "--name", "no-score")
    assert code == 1, out
    assert "TuningJobFailed" in out and "objective metric 'score'" in out

    code, out = _tune(live, src, "--strategy", "Random")
    assert code == 2 and "--max-jobs is required" in out
    code, out = _tune(live, src, "--max-jobs", "2", "--range", "lr=0:1:cubic")
    assert code == 2 and "scale must be one of" in out
    code, out = _tune(live, src, "--max-jobs", "2", "--range", "lr=1:0")
    assert code == 2 and "inverted" in out
    code, out = _tune(live, src, "--max-jobs", "2", ranges=("x=0:1", "x=a,b"))
    assert code == 2 and "more than once" in out
    code, out = _tune(live, src, "--max-jobs", "2", "--objective-type", "Biggest")
    assert code == 2 and "objective_type" in out
    assert live.client.list_tuning_jobs()["HyperParameterTuningJobSummaries"][0]["HyperParameterTuningJobName"] == (
        "no-score"
    ), "bad input creates nothing"


def test_range_syntax() -> None:
    name, rng = _parse_range("lr=1e-4:0.1:log")
    assert name == "lr" and isinstance(rng, ContinuousParameter)
    assert rng.as_tuning_range("lr") == {
        "Name": "lr",
        "MinValue": "1e-4",
        "MaxValue": "0.1",
        "ScalingType": "Logarithmic",
    }
    name, rng = _parse_range("depth=int:2:12")
    assert isinstance(rng, IntegerParameter) and (rng.min_value, rng.max_value, rng.scaling_type) == (2, 12, "Auto")
    name, rng = _parse_range("kernel=linear,rbf")
    assert isinstance(rng, CategoricalParameter) and rng.values == ["linear", "rbf"]
    name, rng = _parse_range("ratio=cat:1:2,3:4")
    assert isinstance(rng, CategoricalParameter) and rng.values == ["1:2", "3:4"]
    assert _parse_range("m=0:0.99:reverselog")[1].scaling_type == "ReverseLogarithmic"
    for bad in ("novalue", "=1:2", "x=a:b", "x=int:1.5:3", "x=1:2:3:4", "x=a,,b"):
        with pytest.raises(typer.BadParameter):
            _parse_range(bad)


EPOCHS = (
    "import argparse, time, kamado\n"
    "p = argparse.ArgumentParser(); p.add_argument('--quality', type=float); p.add_argument('--epochs', type=int)\n"
    "a, _ = p.parse_known_args()\n"
    "for epoch in range(1, a.epochs + 1):\n"
    "    kamado.log_metric('val', a.quality * epoch / a.epochs, step=epoch)\n"
    "    time.sleep(0.1)\n"
)


def test_tune_with_hyperband_from_the_cli(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "hb", EPOCHS)
    base = [
        "tune",
        "train.py",
        "--source-dir",
        str(src),
        "--objective",
        "val",
        "--metric",
        "val=never=([0-9.]+)",
        "--range",
        "quality=0:1",
        "--hp",
        "epochs=9",
        "--strategy",
        "Hyperband",
        "--max-jobs",
        "8",
        "--max-parallel",
        "2",
        "--seed",
        "2",
    ]
    code, out = _run(live, *base)
    assert code == 2 and "--max-resource" in out
    code, out = _run(live, *base, "--max-resource", "9", "--name", "cli-hb", "--output", "json")
    assert code == 0, out
    desc = json.loads(out)
    assert desc["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"] == {
        "MinResource": 1,
        "MaxResource": 9,
    }
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Stopped"] >= 1, "Hyperband stopped weak trials"
