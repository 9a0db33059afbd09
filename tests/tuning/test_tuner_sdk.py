"""``kamado.tuner.HyperparameterTuner`` end to end: a real server, real trial subprocesses, SageMaker SDK code."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

import kamado
from kamado.core.errors import InvalidSpec
from kamado.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
    TuningJobFailed,
)
from tests.live_server import LiveServer, write_script

#: A tiny objective: best near lr=0.01, depth=6, kernel=rbf. Reads argv as the toolkit passes it.
QUADRATIC = """
import math, os, sys
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lr, depth, kernel = float(a["--lr"]), int(a["--depth"]), a["--kernel"]
assert a["--epochs"] == "3" and os.listdir(os.environ["SM_CHANNEL_TRAIN"]) == ["rows.csv"]
acc = 1 - (math.log10(lr) + 2) ** 2 / 10 - (depth - 6) ** 2 / 100 + (0.05 if kernel == "rbf" else 0)
print(f"validation-accuracy={acc:.6f}")
"""
METRICS = [{"Name": "validation:accuracy", "Regex": "validation-accuracy=([-0-9.]+)"}]
RANGES: dict[str, Any] = {
    "lr": ContinuousParameter(1e-4, 1e-1, scaling_type="Logarithmic"),
    "depth": IntegerParameter(2, 12),
    "kernel": CategoricalParameter(["linear", "rbf"]),
}


def _expected(tuned: dict[str, str]) -> float:
    lr, depth, kernel = float(tuned["lr"]), int(tuned["depth"]), json.loads(tuned["kernel"])
    return round(1 - (math.log10(lr) + 2) ** 2 / 10 - (depth - 6) ** 2 / 100 + (0.05 if kernel == "rbf" else 0), 6)


def _estimator(live: LiveServer, tmp_path: Path, script: str = QUADRATIC, **kw: Any) -> kamado.Estimator:
    src = write_script(tmp_path / "src", script, name="train_quadratic.py")
    return kamado.Estimator(
        entry_point="train_quadratic.py",
        source_dir=src,
        hyperparameters={"epochs": 3},
        client=live.client,
        **kw,
    )


def _inputs(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "rows.csv").write_text("a,b\n1,2\n")
    return {"train": str(data)}


def _tuner(est: kamado.Estimator, **kw: Any) -> HyperparameterTuner:
    args: dict[str, Any] = {
        "objective_metric_name": "validation:accuracy",
        "hyperparameter_ranges": RANGES,
        "metric_definitions": METRICS,
        "objective_type": "Maximize",
        "max_parallel_jobs": 2,
        "random_seed": 7,
        **kw,
    }
    return HyperparameterTuner(est, **args)


def _check_search(tuner: HyperparameterTuner, n: int) -> list[dict[str, Any]]:
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": n, "Pending": 0, "Failed": 0}
    summaries = tuner.analytics().training_jobs()
    assert len(summaries) == n
    values = {s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries}
    for s in summaries:  # the sampled values reached the script: its objective is the formula of them
        assert values[s["TrainingJobName"]] == pytest.approx(_expected(s["TunedHyperParameters"]), abs=1e-6)
        assert 1e-4 <= float(s["TunedHyperParameters"]["lr"]) <= 1e-1
    assert tuner.best_training_job() == max(values, key=lambda k: values[k])

    df = tuner.analytics().dataframe()
    assert len(df) == n and set(df["TrainingJobName"]) == set(values)
    assert list(df.columns[:3]) == ["depth", "lr", "kernel"], "integer, continuous, categorical"
    assert list(df["FinalObjectiveValue"]) == sorted(values.values(), reverse=True), "best first"
    assert df.iloc[0]["TrainingJobName"] == tuner.best_training_job()
    assert set(df["kernel"]) <= {"linear", "rbf"} and df["depth"].between(2, 12).all()
    assert (df["TrainingElapsedTimeSeconds"] >= 0).all() and df["TrainingStartTime"].notna().all()
    return summaries


def test_random_search_finds_and_reports_the_best_trial(
    live: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tuner = _tuner(_estimator(live, tmp_path), strategy="Random", max_jobs=6)
    tuner.fit(_inputs(tmp_path), logs=True)
    assert tuner.latest_tuning_job is not None
    name = tuner.latest_tuning_job.name
    assert name.startswith("train-quadratic-") and len(name) <= 32
    summaries = _check_search(tuner, 6)

    out = capsys.readouterr().out
    assert f"[kamado] tuning {name}: 6/6 done, 0 running, 0 failed, best " in out
    assert out.count("[kamado] trial ") == 6, "logs=True prints each trial as it ends"
    child = live.client.describe_training_job(summaries[0]["TrainingJobName"])
    hps = child["HyperParameters"]
    assert hps["epochs"] == "3" and hps["kernel"] in ('"linear"', '"rbf"'), "categoricals JSON-encoded"
    assert "sagemaker_job_name" not in hps and hps["sagemaker_program"] == '"train_quadratic.py"'
    assert child["AlgorithmSpecification"]["MetricDefinitions"] == METRICS
    assert [c["ChannelName"] for c in child["InputDataConfig"]] == ["train"]


def test_bayesian_search_attach_and_best_estimator(live: LiveServer, tmp_path: Path) -> None:
    est = _estimator(live, tmp_path, metric_definitions=METRICS)
    tuner = _tuner(est, metric_definitions=None, strategy="Bayesian", max_jobs=8, base_tuning_job_name="bayes")
    tuner.fit(_inputs(tmp_path))
    assert tuner.latest_tuning_job is not None and tuner.latest_tuning_job.name.startswith("bayes-")
    _check_search(tuner, 8)

    attached = HyperparameterTuner.attach(tuner.latest_tuning_job.name, client=live.client)
    assert attached.best_training_job() == tuner.best_training_job()
    assert (
        attached.strategy == "Bayesian"
        and attached.max_jobs == 8
        and set(attached._hyperparameter_ranges)
        == {
            "lr",
            "depth",
            "kernel",
        }
    )
    best = tuner.best_estimator()
    assert best.latest_training_job is not None and best.latest_training_job.name == tuner.best_training_job()
    assert best.hyperparameters_["kernel"] in ("linear", "rbf") and best.hyperparameters_["epochs"] == 3
    assert est.hyperparameters_ == {"epochs": 3}, "the tuner's estimator is left as it was"


def test_grid_runs_every_combination_once(live: LiveServer, tmp_path: Path) -> None:
    ranges = {"kernel": CategoricalParameter(["linear", "rbf"]), "depth": IntegerParameter(5, 7)}
    script = QUADRATIC.replace('float(a["--lr"])', "0.01")
    tuner = _tuner(
        _estimator(live, tmp_path, script), hyperparameter_ranges=ranges, strategy="Grid", max_parallel_jobs=3
    )
    assert tuner.max_jobs is None, "Grid: max_jobs is inferred (every combination)"
    tuner.fit(_inputs(tmp_path))
    summaries = tuner.analytics().training_jobs()
    combos = [(s["TunedHyperParameters"]["kernel"], s["TunedHyperParameters"]["depth"]) for s in summaries]
    assert sorted(combos) == sorted((f'"{k}"', str(d)) for k in ("linear", "rbf") for d in (5, 6, 7))
    best = tuner.describe()["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"kernel": '"rbf"', "depth": "6"}
    df = tuner.analytics().dataframe()
    assert (df.iloc[0]["kernel"], df.iloc[0]["depth"]) == ("rbf", 6)


def test_objective_never_printed_fails_the_tuning_job_and_fit_raises(live: LiveServer, tmp_path: Path) -> None:
    tuner = _tuner(_estimator(live, tmp_path, "print('nothing to see')\n"), strategy="Random", max_jobs=10)
    tuner.max_parallel_jobs = 3
    with pytest.raises(TuningJobFailed, match="validation:accuracy") as err:
        tuner.fit(_inputs(tmp_path))
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Failed"
    assert desc["FailureReason"] in err.value.message and "objective metric" in desc["FailureReason"]
    assert len(tuner.analytics().training_jobs()) < 10, "it gives up before spending the whole budget"
    with pytest.raises(kamado.NotFound, match="no best training job"):
        tuner.best_training_job()


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"hyperparameter_ranges": {"lr": ContinuousParameter(0.5, 0.1)}}, "inverted"),
        ({"hyperparameter_ranges": {"lr": ContinuousParameter(0, 1, "Logarithmic")}}, "Logarithmic"),
        ({"hyperparameter_ranges": {"lr": ContinuousParameter(0.1, 1)}, "strategy": "Grid"}, "Grid"),
        ({"objective_metric_name": "validation:auc"}, "metric_definitions"),
        ({"max_parallel_jobs": 0}, "max_parallel_jobs"),
    ],
    ids=["inverted", "log-zero", "grid-continuous", "objective-undefined", "parallel-0"],
)
def test_bad_input_raises_invalid_spec_and_creates_nothing(
    live: LiveServer, tmp_path: Path, change: dict[str, Any], text: str
) -> None:
    with pytest.raises(InvalidSpec, match=text):
        _tuner(_estimator(live, tmp_path), max_jobs=4, **change).fit(_inputs(tmp_path))
    assert live.client.list_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    assert live.client.list_training_jobs()["TrainingJobSummaries"] == []


def test_not_built_sagemaker_arguments_say_so(live: LiveServer, tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError, match="autotune"):
        _tuner(_estimator(live, tmp_path), autotune=True)
    with pytest.raises(TypeError, match="unexpected"):
        _tuner(_estimator(live, tmp_path), max_jobs=2).fit(_inputs(tmp_path), wait=False, nonsense=1)


def test_stop_ends_stopped_with_running_trials_stopped(live: LiveServer, tmp_path: Path) -> None:
    slow = "import time\nprint('validation-accuracy=0.5', flush=True)\ntime.sleep(60)\n"
    tuner = _tuner(_estimator(live, tmp_path, slow), strategy="Random", max_jobs=6)
    tuner.fit(_inputs(tmp_path), wait=False)
    deadline = time.monotonic() + 30
    while tuner.describe()["TrainingJobStatusCounters"]["InProgress"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    tuner.stop()
    desc = tuner.wait()  # Stopped is a normal end, as in SageMaker: no exception
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    summaries = tuner.analytics().training_jobs()
    assert len(summaries) == 2 and all(s["TrainingJobStatus"] == "Stopped" for s in summaries)


def test_generated_names_fit_sagemakers_tuning_job_pattern() -> None:
    est = kamado.Estimator(entry_point="a_very_long_training_script_name_indeed.py", source_dir=".")
    tuner = HyperparameterTuner(est, "m", {"x": IntegerParameter(1, 2)}, metric_definitions=[])
    name = tuner._default_name()
    assert len(name) <= 32 and name.startswith("a-very-long-traini")
    from kamado.sdk.tuner import TUNING_JOB_NAME

    assert TUNING_JOB_NAME.fullmatch(name)
    assert tuner.max_jobs == 1, "as in SageMaker, max_jobs defaults to 1 for non-Grid strategies"


def test_warm_start_and_hyperband_shapes_reach_the_server(live: LiveServer, tmp_path: Path) -> None:
    from kamado.tuner import HyperbandStrategyConfig, StrategyConfig

    est = _estimator(live, tmp_path)
    parent = _tuner(est, strategy="Random", max_jobs=2, base_tuning_job_name="parent")
    parent.fit(_inputs(tmp_path))
    assert parent.latest_tuning_job is not None
    child = parent.identical_dataset_and_algorithm_tuner()
    child.base_tuning_job_name = "child"
    child.fit(_inputs(tmp_path))
    desc = child.describe()
    assert desc["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent.latest_tuning_job.name}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }
    overall = desc["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    own = desc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert (
        overall >= own
        and overall >= parent.describe()["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    )

    hyperband = _tuner(
        est,
        strategy="Hyperband",
        strategy_config=StrategyConfig(hyperband_strategy_config=HyperbandStrategyConfig(max_resource=9)),
        max_jobs=2,
        base_tuning_job_name="hb",
    )
    hyperband.fit(_inputs(tmp_path))
    config = hyperband.describe()["HyperParameterTuningJobConfig"]
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}}
