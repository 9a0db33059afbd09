"""The search strategies as pure functions: reproducible, in range, and honest about scaling."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kamado.tuning.search import PastTrial, grid_point, suggest
from kamado.tuning.spec import TuningJobConfig


def _config(strategy: str, ranges: dict[str, Any], max_jobs: int | None = 20) -> TuningJobConfig:
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": 1}
    extra: dict[str, Any] = {}
    if strategy == "Hyperband":
        extra["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return TuningJobConfig.model_validate(
        {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            **extra,
        }
    )


RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "momentum", "MinValue": "0.5", "MaxValue": "0.9999", "ScalingType": "ReverseLogarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "12"}],
    "CategoricalParameterRanges": [{"Name": "kernel", "Values": ["linear", "rbf"]}],
}


def _run(strategy: str, seed: int, n: int = 15) -> list[dict[str, str]]:
    config = _config(strategy, RANGES)
    past: list[PastTrial] = []
    for i in range(1, n + 1):
        tuned = suggest(config, past, base_seed=seed, trial_number=i)
        past.append(PastTrial(tuned=tuned, state="complete", value=abs(math.log10(float(tuned["lr"])) + 2)))
    return [p.tuned for p in past]


@pytest.mark.parametrize("strategy", ["Random", "Bayesian", "Hyperband"])
def test_same_seed_same_search_other_seed_other_search(strategy: str) -> None:
    assert _run(strategy, 1) == _run(strategy, 1)
    assert _run(strategy, 1) != _run(strategy, 2)


def test_values_stay_in_range_and_respect_types() -> None:
    for tuned in _run("Random", 3, n=40):
        assert 0.0001 <= float(tuned["lr"]) <= 1
        assert 0.5 <= float(tuned["momentum"]) <= 0.9999
        assert tuned["depth"].isdigit() and 2 <= int(tuned["depth"]) <= 12
        assert tuned["kernel"] in ("linear", "rbf")


def test_log_and_reverse_log_scaling_concentrate_where_they_should() -> None:
    samples = _run("Random", 5, n=60)
    small_lr = sum(float(t["lr"]) < 0.01 for t in samples)
    near_one = sum(float(t["momentum"]) > 0.99 for t in samples)
    assert small_lr > 25, "log scaling: half the mass below 0.01 on [1e-4, 1]"
    assert near_one > 15, "reverse-log scaling: dense close to 1"


def test_bayesian_converges_better_than_random_on_a_simple_objective() -> None:
    def best(strategy: str, seed: int) -> float:
        return min(abs(math.log10(float(t["lr"])) + 2) for t in _run(strategy, seed, n=25))

    bayes = sorted(best("Bayesian", s) for s in range(8))
    rand = sorted(best("Random", s) for s in range(8))
    assert bayes[4] <= rand[4], f"median regret: Bayesian {bayes[4]:.3f} vs Random {rand[4]:.3f}"


def test_grid_visits_every_combination_once_in_a_seeded_order() -> None:
    ranges = {
        "IntegerParameterRanges": [{"Name": "d", "MinValue": "1", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "k", "Values": ["a", "b"]}],
    }
    config = _config("Grid", ranges, max_jobs=None)
    assert config.max_jobs() == 6
    points = [grid_point(config, 7, n) for n in range(1, 7)]
    assert sorted((p["d"], p["k"]) for p in points) == sorted((str(d), k) for d in (1, 2, 3) for k in "ab")
    assert points == [grid_point(config, 7, n) for n in range(1, 7)]
    assert points != [grid_point(config, 8, n) for n in range(1, 7)]


def test_stored_values_outside_the_ranges_are_ignored_not_fatal() -> None:
    config = _config("Bayesian", RANGES)
    past = [
        PastTrial(tuned={"lr": "5", "momentum": "0.6", "depth": "3", "kernel": "poly"}, state="complete", value=1.0),
        PastTrial(tuned={"lr": "abc"}, state="failed"),
    ]
    tuned = suggest(config, past, base_seed=1, trial_number=3)
    assert set(tuned) == {"lr", "momentum", "depth", "kernel"}
