"""Early stopping: the rules as pure functions, and both end to end through a real tuning job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from kamado.tuning.early_stopping import asha_rule, median_rule, rungs
from tests.live_server import LiveServer, write_script


def test_median_rule_needs_peers_and_stops_the_worse_half() -> None:
    peers = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.6, 0.7, 0.8]]
    assert median_rule([0.1], peers[:2], maximize=True) is None, "too few peers to judge"
    assert median_rule([0.9, 0.9], peers, maximize=True) is None
    reason = median_rule([0.1, 0.2], peers, maximize=True)
    assert reason and reason.startswith("early stopping")
    assert median_rule([0.1, 0.2], peers, maximize=False) is None, "lower is better when minimising"


def test_asha_keeps_the_top_third_at_each_rung() -> None:
    assert rungs(1, 27) == [1, 3, 9]
    others = [[0.9], [0.8], [0.7], [0.6], [0.5]]
    assert asha_rule([0.95], others, maximize=True, min_resource=1, max_resource=27) is None
    reason = asha_rule([0.55], others, maximize=True, min_resource=1, max_resource=27)
    assert reason and "Hyperband" in reason
    assert asha_rule([0.1], [[0.9]], maximize=True, min_resource=1, max_resource=27), "with few, only the best goes on"
    assert asha_rule([0.9], [[0.1]], maximize=True, min_resource=1, max_resource=27) is None
    assert asha_rule([0.5], [], maximize=True, min_resource=1, max_resource=27) is None, "alone at a rung: continue"


EPOCHS = (
    "import argparse, time, kamado\n"
    "p = argparse.ArgumentParser(); p.add_argument('--quality', type=float); p.add_argument('--epochs', type=int)\n"
    "a, _ = p.parse_known_args()\n"
    "for epoch in range(1, a.epochs + 1):\n"
    "    kamado.log_metric('val', a.quality * epoch / a.epochs, step=epoch)\n"
    "    time.sleep(0.15)\n"
)


def _tuning_body(live: LiveServer, tmp_path: Path, name: str, config: dict) -> dict:
    uri = live.client.upload_directory(write_script(tmp_path / name, EPOCHS))
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "val"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "quality", "MinValue": "0", "MaxValue": "1"}]},
            "RandomSeed": 5,
            **config,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "val", "Regex": "never-printed=([0-9.]+)"}]},
            "StaticHyperParameters": {
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": json.dumps(uri),
                "epochs": "9",
            },
        },
    }


def _run(live: LiveServer, body: dict) -> tuple[dict, list[dict]]:
    name = body["HyperParameterTuningJobName"]
    assert httpx.post(f"{live.url}/api/v1/tuning-jobs", json=body).status_code == 201
    deadline = time.monotonic() + 120
    while (desc := httpx.get(f"{live.url}/api/v1/tuning-jobs/{name}").json())["HyperParameterTuningJobStatus"] in (
        "InProgress",
        "Stopping",
    ):
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    trials = httpx.get(f"{live.url}/api/v1/tuning-jobs/{name}/training-jobs").json()["TrainingJobSummaries"]
    return desc, trials


def test_hyperband_stops_weak_trials_early(live: LiveServer, tmp_path: Path) -> None:
    desc, trials = _run(
        live,
        _tuning_body(
            live,
            tmp_path,
            "hb",
            {
                "Strategy": "Hyperband",
                "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}},
            },
        ),
    )
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    assert stopped, "Hyperband pruned nothing"
    reason = live.client.describe_training_job(stopped[0]["TrainingJobName"])["StopReason"]
    assert reason.startswith("early stopping (Hyperband)")
    best = desc["BestTrainingJob"]
    assert best["TrainingJobStatus"] == "Completed"
    assert float(best["TunedHyperParameters"]["quality"]) == max(
        float(t["TunedHyperParameters"]["quality"]) for t in trials
    )


def test_auto_early_stopping_uses_the_median_rule(live: LiveServer, tmp_path: Path) -> None:
    desc, trials = _run(
        live,
        _tuning_body(
            live,
            tmp_path,
            "med",
            {
                "Strategy": "Random",
                "TrainingJobEarlyStoppingType": "Auto",
            },
        ),
    )
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    assert stopped, "the median rule stopped nothing"
    reasons = {live.client.describe_training_job(t["TrainingJobName"])["StopReason"] for t in stopped}
    assert all(r.startswith("early stopping: running average") for r in reasons)
    assert desc["TrainingJobStatusCounters"]["Stopped"] == len(stopped)


def test_hyperband_requires_its_config(live: LiveServer, tmp_path: Path) -> None:
    body = _tuning_body(live, tmp_path, "hbbad", {"Strategy": "Hyperband"})
    resp = httpx.post(f"{live.url}/api/v1/tuning-jobs", json=body)
    assert resp.status_code == 400 and "HyperbandStrategyConfig" in resp.json()["message"]
