"""The tuning issue's acceptance run: a 32-trial Bayesian search with 2 parallel trials on a real
scikit-learn script finishes with the best job recorded and at most 2 trials ever running at once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from tests.live_server import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_tuning"


def _channels(root: Path) -> dict[str, str]:
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X[:, :8], y, test_size=0.3, random_state=0, stratify=y)
    out = {}
    for name, (X_, y_) in {"train": (X_tr, y_tr), "validation": (X_va, y_va)}.items():
        d = root / name
        d.mkdir(parents=True)
        header = ",".join([f"f{i}" for i in range(X_.shape[1])] + ["target"])
        np.savetxt(d / "data.csv", np.column_stack([X_, y_]), delimiter=",", header=header, comments="", fmt="%g")
        out[name] = str(d)
    return out


def test_32_trial_bayesian_search_on_a_real_sklearn_script(live: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src)
    uri = live.client.upload_directory(src)
    channels = {name: live.client.upload_directory(path) for name, path in _channels(tmp_path / "data").items()}
    body = {
        "HyperParameterTuningJobName": "sk-bayes",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 32, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "learning-rate", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"}
                ],
                "IntegerParameterRanges": [{"Name": "max-depth", "MinValue": "1", "MaxValue": "5"}],
                "CategoricalParameterRanges": [{"Name": "loss", "Values": ['"log_loss"', '"exponential"']}],
            },
            "RandomSeed": 1,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "MetricDefinitions": [{"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+)"}]
            },
            "StaticHyperParameters": {
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": json.dumps(uri),
                "n-estimators": "10",
            },
            "InputDataConfig": [
                {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": u}}} for name, u in channels.items()
            ],
        },
    }
    assert httpx.post(f"{live.url}/api/v1/tuning-jobs", json=body).status_code == 201
    deadline = time.monotonic() + 240
    while (desc := httpx.get(f"{live.url}/api/v1/tuning-jobs/sk-bayes").json())["HyperParameterTuningJobStatus"] == (
        "InProgress"
    ):
        assert desc["TrainingJobStatusCounters"]["InProgress"] <= 2
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"]["Completed"] == 32
    trials = httpx.get(f"{live.url}/api/v1/tuning-jobs/sk-bayes/training-jobs").json()["TrainingJobSummaries"]
    spans = []
    for t in trials:
        d = live.client.describe_training_job(t["TrainingJobName"])
        start = next(s["StartTime"] for s in d["SecondaryStatusTransitions"] if s["Status"] == "Training")
        spans.append((start, d["TrainingEndTime"]))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2, f"{peak} trials ran at once"
    best_value = max(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials)
    assert desc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == best_value
    assert best_value >= 0.9
    model = live.client.describe_training_job(desc["BestTrainingJob"]["TrainingJobName"])["ModelArtifacts"]
    assert model["S3ModelArtifacts"].endswith("model.tar.gz")
