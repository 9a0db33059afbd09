"""Tuning-job routes: SageMaker's Create/Describe/List/Stop HyperParameterTuningJob and its training jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kamado.api.platform import Platform
from kamado.tuning.spec import CreateHyperParameterTuningJobRequest

router = APIRouter(tags=["tuning-jobs"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.post("/tuning-jobs", status_code=201)
def create_tuning_job(request: Request, body: CreateHyperParameterTuningJobRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.tuning.create(body)
    platform.wake()
    return {"HyperParameterTuningJobArn": rec.arn, "HyperParameterTuningJobName": rec.name}


@router.get("/tuning-jobs")
def list_tuning_jobs(
    request: Request,
    StatusEquals: str | None = None,
    NameContains: Annotated[str | None, Query(max_length=32)] = None,
    MaxResults: int = 50,
    NextToken: Annotated[str | None, Query(max_length=8192)] = None,
) -> dict[str, Any]:
    return _platform(request).tuning.list(
        status_equals=StatusEquals, name_contains=NameContains, max_results=MaxResults, next_token=NextToken
    )


@router.get("/tuning-jobs/{name}")
def describe_tuning_job(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).tuning.describe(name)


@router.post("/tuning-jobs/{name}/stop")
def stop_tuning_job(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.tuning.stop(name)
    platform.wake()
    return {}


@router.get("/tuning-jobs/{name}/training-jobs")
def list_training_jobs_for_tuning_job(request: Request, name: str) -> dict[str, Any]:
    """Every trial with its tuned hyperparameters and objective (ListTrainingJobsForHyperParameterTuningJob)."""
    platform = _platform(request)
    rec = platform.tuning.get(name)
    objective = rec.spec["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    tuned_names = {
        r["Name"]
        for key in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
        for r in rec.spec["HyperParameterTuningJobConfig"]["ParameterRanges"].get(key, [])
    }
    summaries = []
    for child in platform.tuning.children(name):
        finals = {p.metric: p.value for p in platform.store.final_metrics("training-job", child.name)}
        value = finals.get(objective["MetricName"]) if child.state == "Completed" else None
        summary: dict[str, Any] = {
            "TrainingJobName": child.name,
            "TrainingJobArn": child.arn,
            "TuningJobName": name,
            "TrainingJobStatus": child.state,
            "TunedHyperParameters": {
                k: v for k, v in child.spec.get("HyperParameters", {}).items() if k in tuned_names
            },
            "ObjectiveStatus": "Succeeded"
            if value is not None
            else ("Pending" if child.state in ("InProgress", "Stopping") else "Failed"),
        }
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"],
                "MetricName": objective["MetricName"],
                "Value": value,
            }
        if child.status.get("FailureReason"):
            summary["FailureReason"] = child.status["FailureReason"]
        summaries.append(summary)
    return {"TrainingJobSummaries": summaries}
