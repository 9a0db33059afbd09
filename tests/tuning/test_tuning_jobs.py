"""Tuning jobs through the REST API against a real server: validation, parallelism, strategies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer, write_script

QUADRATIC = (
    "import argparse, time\n"
    "p = argparse.ArgumentParser()\n"
    "p.add_argument('--xx', type=float, default=0.0)\n"
    "p.add_argument('--kk', type=str, default='a')\n"
    "p.add_argument('--nn', type=int, default=1)\n"
    "a, _ = p.parse_known_args()\n"
    "time.sleep(0.3)\n"
    "print(f\"score={-(a.xx - 0.3) ** 2 + (0.1 if a.kk == 'b' else 0) + 0.01 * a.nn:.6f}\")\n"
)


def _request(
    live: LiveServer,
    tmp_path: Path,
    name: str,
    *,
    strategy: str = "Bayesian",
    max_jobs: int | None = 8,
    parallel: int = 2,
    ranges: dict[str, Any] | None = None,
    script: str = QUADRATIC,
    metric: str = "score",
) -> dict[str, Any]:
    src = write_script(tmp_path / f"src-{name}", script)
    uri = live.client.upload_directory(src)
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": metric},
            "ResourceLimits": limits,
            "ParameterRanges": ranges
            or {
                "ContinuousParameterRanges": [{"Name": "xx", "MinValue": "0", "MaxValue": "1"}],
                "CategoricalParameterRanges": [{"Name": "kk", "Values": ["a", "b"]}],
            },
            "RandomSeed": 3,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "score", "Regex": "score=([-0-9.]+)"}]},
            "StaticHyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(uri)},
        },
    }


def _create(live: LiveServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{live.url}/api/v1/tuning-jobs", json=body, timeout=30)


def _wait(live: LiveServer, name: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = httpx.get(f"{live.url}/api/v1/tuning-jobs/{name}").json()
        if desc["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return desc
        assert time.monotonic() < deadline, desc
        time.sleep(0.1)


def _trials(live: LiveServer, name: str) -> list[dict[str, Any]]:
    return httpx.get(f"{live.url}/api/v1/tuning-jobs/{name}/training-jobs").json()["TrainingJobSummaries"]


def test_bayesian_search_respects_parallelism_and_records_the_best(live: LiveServer, tmp_path: Path) -> None:
    assert _create(live, _request(live, tmp_path, "bayes", max_jobs=8, parallel=2)).status_code == 201
    desc = _wait(live, "bayes")
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"]["Completed"] == 8
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 8, "Pending": 0, "Failed": 0}
    trials = _trials(live, "bayes")
    assert [t["TrainingJobName"].split("-")[1] for t in trials] == [f"{i:03d}" for i in range(1, 9)]
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials}
    best = desc["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values.values())
    assert values[best["TrainingJobName"]] == max(values.values())
    assert set(best["TunedHyperParameters"]) == {"xx", "kk"}
    # At most MaxParallelTrainingJobs trials ever ran at once (from the children's own timelines).
    spans = []
    for t in trials:
        d = live.client.describe_training_job(t["TrainingJobName"])
        starts = [s for s in d["SecondaryStatusTransitions"] if s["Status"] == "Training"]
        spans.append((starts[0]["StartTime"], d["TrainingEndTime"]))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2, f"{peak} trials ran at once"
    children = live.client.list_training_jobs(TuningJobName="bayes", MaxResults=100)["TrainingJobSummaries"]
    assert len(children) == 8, "trials are ordinary training jobs, visible in the job list"
    assert (
        live.client.describe_training_job(trials[0]["TrainingJobName"])["HyperParameters"]["_tuning_objective_metric"]
        == '"score"'
    )


def test_grid_runs_every_combination_once(live: LiveServer, tmp_path: Path) -> None:
    ranges = {
        "IntegerParameterRanges": [{"Name": "nn", "MinValue": "1", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "kk", "Values": ["a", "b"]}],
    }
    body = _request(live, tmp_path, "grid", strategy="Grid", max_jobs=None, parallel=3, ranges=ranges)
    assert _create(live, body).status_code == 201
    desc = _wait(live, "grid")
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    combos = {(t["TunedHyperParameters"]["nn"], t["TunedHyperParameters"]["kk"]) for t in _trials(live, "grid")}
    assert combos == {(str(n), k) for n in (1, 2, 3) for k in ("a", "b")}
    assert desc["BestTrainingJob"]["TunedHyperParameters"] == {"nn": "3", "kk": "b"}


def test_objective_never_printed_fails_the_tuning_job_with_a_reason(live: LiveServer, tmp_path: Path) -> None:
    body = _request(live, tmp_path, "nometric", max_jobs=20, parallel=2, script="print('no objective here')\n")
    assert _create(live, body).status_code == 201
    desc = _wait(live, "nometric")
    assert desc["HyperParameterTuningJobStatus"] == "Failed"
    assert "objective metric 'score'" in desc["FailureReason"]
    assert desc["TrainingJobStatusCounters"]["Completed"] + desc["TrainingJobStatusCounters"]["InProgress"] < 20


def test_target_objective_completes_early(live: LiveServer, tmp_path: Path) -> None:
    body = _request(live, tmp_path, "target", max_jobs=30, parallel=1)
    body["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = {"TargetObjectiveMetricValue": -1.0}
    assert _create(live, body).status_code == 201
    desc = _wait(live, "target")
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert len(_trials(live, "target")) < 30


def test_stop_stops_running_trials(live: LiveServer, tmp_path: Path) -> None:
    slow = "import time\nprint('score=0.1', flush=True)\ntime.sleep(60)\n"
    assert _create(live, _request(live, tmp_path, "stopme", max_jobs=4, parallel=2, script=slow)).status_code == 201
    deadline = time.monotonic() + 30
    while len(_trials(live, "stopme")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert httpx.post(f"{live.url}/api/v1/tuning-jobs/stopme/stop").status_code == 200
    desc = _wait(live, "stopme", timeout=60)
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert all(t["TrainingJobStatus"] == "Stopped" for t in _trials(live, "stopme"))
    again = httpx.post(f"{live.url}/api/v1/tuning-jobs/stopme/stop")
    assert again.status_code == 409 and again.json()["code"] == "IllegalTransition"


@pytest.mark.parametrize(
    ("mutate", "field_or_text"),
    [
        (
            lambda b: b["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
                MinValue="2", MaxValue="1"
            ),
            "inverted",
        ),
        (
            lambda b: b["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
                ScalingType="Logarithmic"
            ),
            "Logarithmic scaling needs MinValue > 0",
        ),
        (lambda b: b["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "Grid needs categorical or integer"),
        (lambda b: b["HyperParameterTuningJobConfig"].update(Strategy="Annealing"), "Strategy"),
        (
            lambda b: b["HyperParameterTuningJobConfig"]["ResourceLimits"].update(MaxParallelTrainingJobs=0),
            "MaxParallelTrainingJobs",
        ),
        (
            lambda b: b["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(MetricName="auc"),
            "not produced by any MetricDefinition",
        ),
        (lambda b: b.update(HyperParameterTuningJobName="x" * 33), "HyperParameterTuningJobName"),
        (lambda b: b["TrainingJobDefinition"]["StaticHyperParameters"].update(xx="0.5"), "both tuned and static"),
        (
            lambda b: b["TrainingJobDefinition"].update(
                InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "file:///etc"}}}]
            ),
            "TrainingJobDefinition",
        ),
        (
            lambda b: b["HyperParameterTuningJobConfig"]["ParameterRanges"].update(
                ContinuousParameterRanges=[], CategoricalParameterRanges=[]
            ),
            "ParameterRanges is empty",
        ),
    ],
    ids=[
        "inverted",
        "log-zero",
        "grid-continuous",
        "strategy",
        "parallel-0",
        "objective",
        "name",
        "static-overlap",
        "channel",
        "empty",
    ],
)
def test_bad_tuning_requests_are_400_and_create_nothing(
    live: LiveServer, tmp_path: Path, mutate: Any, field_or_text: str
) -> None:
    body = _request(live, tmp_path, "bad")
    mutate(body)
    resp = _create(live, body)
    assert resp.status_code == 400, resp.text
    problem = resp.json()
    assert problem["code"] == "ValidationException"
    fields = " ".join(d.get("field", "") for d in problem.get("details", []) if isinstance(d, dict))
    assert field_or_text in problem["message"] or field_or_text in fields, problem
    assert httpx.get(f"{live.url}/api/v1/tuning-jobs").json()["HyperParameterTuningJobSummaries"] == []
    assert live.client.list_training_jobs()["TrainingJobSummaries"] == []


def test_duplicate_tuning_job_name_is_409(live: LiveServer, tmp_path: Path) -> None:
    body = _request(live, tmp_path, "dupe", max_jobs=1, parallel=1)
    assert _create(live, body).status_code == 201
    again = _create(live, body)
    assert again.status_code == 409 and again.json()["code"] == "ResourceInUse"
    _wait(live, "dupe")


def test_warm_start_from_a_parent_tuning_job(live: LiveServer, tmp_path: Path) -> None:
    parent = _request(live, tmp_path, "parent", max_jobs=4, parallel=2)
    assert _create(live, parent).status_code == 201
    child = _request(live, tmp_path, "child", max_jobs=2, parallel=2)
    child["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }
    running_parent = _create(live, child)
    assert running_parent.status_code == 400 and "needs ended parents" in running_parent.json()["message"]
    parent_desc = _wait(live, "parent")
    assert _create(live, child).status_code == 201
    desc = _wait(live, "child")
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert len(_trials(live, "child")) == 2, "warm-start trials inform the search but do not use the budget"
    values = [
        t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for name in ("parent", "child")
        for t in _trials(live, name)
    ]
    assert desc["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
    assert desc["BestTrainingJob"]["TuningJobName"] == "child"
    assert parent_desc["BestTrainingJob"]["TuningJobName"] == "parent"


def test_warm_start_rejects_missing_or_mismatched_parents(live: LiveServer, tmp_path: Path) -> None:
    body = _request(live, tmp_path, "orphan", max_jobs=1, parallel=1)
    body["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "nobody"}],
        "WarmStartType": "TransferLearning",
    }
    resp = _create(live, body)
    assert resp.status_code == 400 and "does not exist" in resp.json()["message"]
    other = _request(live, tmp_path, "minimiser", max_jobs=1, parallel=1)
    other["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] = "Minimize"
    assert _create(live, other).status_code == 201
    _wait(live, "minimiser")
    body["WarmStartConfig"]["ParentHyperParameterTuningJobs"] = [{"HyperParameterTuningJobName": "minimiser"}]
    body["HyperParameterTuningJobName"] = "orphan2"
    resp = _create(live, body)
    assert resp.status_code == 400 and "another objective" in resp.json()["message"]
