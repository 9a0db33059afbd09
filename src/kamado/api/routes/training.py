"""Training-job routes: SageMaker's CreateTrainingJob/Describe/List/Stop as REST, plus logs and metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from kamado.api.params import Timestamp
from kamado.api.platform import Platform
from kamado.api.routes.project_view import with_project, with_projects
from kamado.core.downsample import MAX_POINTS_LIMIT, MIN_POINTS, thin_series
from kamado.core.lifecycle import TrainingJobStatus
from kamado.training.service import KIND
from kamado.training.spec import CreateTrainingJobRequest

router = APIRouter(tags=["training-jobs"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    TrainingJobName: str | None = None


@router.post("/training-jobs", status_code=201)
def create_training_job(request: Request, body: CreateTrainingJobRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.training.create(body)
    platform.wake()
    return {"TrainingJobArn": rec.arn, "TrainingJobName": rec.name}


@router.get("/training-jobs")
def list_training_jobs(
    request: Request,
    StatusEquals: str | None = None,
    NameContains: Annotated[str | None, Query(max_length=63)] = None,
    CreationTimeAfter: Timestamp = None,
    CreationTimeBefore: Timestamp = None,
    SortBy: str = "CreationTime",
    SortOrder: str = "Descending",
    MaxResults: int = 50,
    NextToken: Annotated[str | None, Query(max_length=8192)] = None,
    TuningJobName: str | None = None,
) -> dict[str, Any]:
    page = _platform(request).training.list(
        status_equals=StatusEquals,
        name_contains=NameContains,
        creation_time_after=CreationTimeAfter.timestamp() if CreationTimeAfter else None,
        creation_time_before=CreationTimeBefore.timestamp() if CreationTimeBefore else None,
        sort_by=SortBy,
        sort_order=SortOrder,
        max_results=MaxResults,
        next_token=NextToken,
        parent=TuningJobName,
    )
    return with_projects(page, "TrainingJobSummaries")


@router.get("/training-jobs/{name}")
def describe_training_job(request: Request, name: str) -> dict[str, Any]:
    return with_project(_platform(request).training.describe(name))


@router.post("/training-jobs/{name}/stop")
def stop_training_job(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.training.stop(name)
    platform.wake()
    return {}


@router.post("/training-jobs/{name}/rerun", status_code=201)
def rerun_training_job(
    request: Request, name: str, body: Annotated[RerunRequest | None, Body()] = None
) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.training.rerun(name, body.TrainingJobName if body else None)
    platform.wake()
    return {"TrainingJobArn": rec.arn, "TrainingJobName": rec.name}


@router.get("/training-jobs/{name}/logs")
async def training_job_logs(
    request: Request,
    name: str,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    wait: Annotated[float, Query(ge=0, le=30)] = 0,
    secondary: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Log events after sequence number ``after``. With ``wait`` > 0 this long-polls until new output
    arrives, the job ends, or its SecondaryStatus differs from ``secondary`` (the caller's last known one),
    so following a log and its progress costs one request per change, not a busy loop."""
    platform = _platform(request)
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        rec = await run_in_threadpool(platform.training.get, name)
        chunks = await run_in_threadpool(platform.store.read_logs, KIND, name, after_seq=after, limit=limit)
        done = TrainingJobStatus(rec.state).is_terminal()
        moved = secondary is not None and rec.status.get("SecondaryStatus") != secondary
        if chunks or done or moved or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.05)
    events = [{"Seq": c.seq, "Attempt": c.attempt, "Timestamp": c.ts, "Message": c.data} for c in chunks if c.data]
    next_seq = chunks[-1].seq if chunks else after
    return {
        "Events": events,
        "NextSeq": next_seq,
        "TrainingJobStatus": rec.state,
        "SecondaryStatus": rec.status.get("SecondaryStatus"),
        "StatusMessage": (rec.status.get("SecondaryStatusTransitions") or [{}])[-1].get("StatusMessage"),
        "Complete": done and len(chunks) < limit,
    }


@router.get("/training-jobs/{name}/metrics")
def training_job_metrics(
    request: Request,
    name: str,
    MetricName: str | None = None,
    MaxPoints: Annotated[int | None, Query(ge=MIN_POINTS, le=MAX_POINTS_LIMIT)] = None,
) -> dict[str, Any]:
    """Every point, or with ``MaxPoints`` at most that many per metric, thinned on the server with LTTB so a
    chart of a 100,000-point series costs a thousand points of JSON, not megabytes."""
    platform = _platform(request)
    platform.training.get(name)
    points = platform.store.read_metrics(KIND, name, MetricName)
    if MaxPoints is None:
        return {
            "Metrics": [{"MetricName": p.metric, "Value": p.value, "Timestamp": p.ts, "Step": p.step} for p in points]
        }
    thin = thin_series([p.metric for p in points], [p.step for p in points], [p.value for p in points], MaxPoints)
    return {
        "Metrics": [
            {"MetricName": p.metric, "Value": p.value, "Timestamp": p.ts, "Step": p.step, "Index": pos}
            for p, pos in zip((points[i] for i in thin.kept), thin.position, strict=True)
        ],
        "Downsampled": len(thin.kept) < len(points),
        "TotalPoints": thin.totals,
    }
