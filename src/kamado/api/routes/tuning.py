"""Tuning-job routes: SageMaker's Create/Describe/List/Stop HyperParameterTuningJob and its training jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kamado.api.platform import Platform
from kamado.api.routes.project_view import with_project
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
    return with_project(_platform(request).tuning.describe(name))


@router.post("/tuning-jobs/{name}/stop")
def stop_tuning_job(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.tuning.stop(name)
    platform.wake()
    return {}


@router.get("/tuning-jobs/{name}/training-jobs")
def list_training_jobs_for_tuning_job(request: Request, name: str) -> dict[str, Any]:
    """Every trial with its tuned hyperparameters and objective (ListTrainingJobsForHyperParameterTuningJob)."""
    return {"TrainingJobSummaries": _platform(request).tuning.trial_summaries(name)}
