"""Processing-job routes: SageMaker's CreateProcessingJob/Describe/List/Stop as REST, plus logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kamado.api.params import Timestamp
from kamado.api.platform import Platform
from kamado.api.routes.hosting import ListParams
from kamado.processing.instances import host_name
from kamado.processing.service import KIND, ProcessingJobStatus
from kamado.processing.spec import CreateProcessingJobRequest

router = APIRouter(tags=["processing-jobs"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.post("/processing-jobs", status_code=201)
def create_processing_job(request: Request, body: CreateProcessingJobRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.processing.create(body)
    platform.wake()
    return {"ProcessingJobArn": rec.arn, "ProcessingJobName": rec.name}


@router.get("/processing-jobs")
def list_processing_jobs(
    request: Request,
    query: ListParams,
    StatusEquals: str | None = None,
    CreationTimeAfter: Timestamp = None,
    CreationTimeBefore: Timestamp = None,
) -> dict[str, Any]:
    return _platform(request).processing.list(
        status_equals=StatusEquals,
        created_after=CreationTimeAfter.timestamp() if CreationTimeAfter else None,
        created_before=CreationTimeBefore.timestamp() if CreationTimeBefore else None,
        **query,
    )


@router.get("/processing-jobs/{name}")
def describe_processing_job(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).processing.describe(name)


@router.post("/processing-jobs/{name}/stop")
def stop_processing_job(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.processing.stop(name)
    platform.wake()
    return {}


@router.get("/processing-jobs/{name}/logs")
def processing_job_logs(
    request: Request,
    name: str,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Log events of every instance after sequence number ``after``, each tagged with its ``Host``."""
    platform = _platform(request)
    rec = platform.processing.get(name)
    chunks = platform.store.read_logs(KIND, name, after_seq=after, limit=limit)
    done = ProcessingJobStatus(rec.state).is_terminal()
    return {
        "Events": [
            {"Seq": c.seq, "Host": host_name(c.attempt), "Timestamp": c.ts, "Message": c.data} for c in chunks if c.data
        ],
        "NextSeq": chunks[-1].seq if chunks else after,
        "ProcessingJobStatus": rec.state,
        "Complete": done and len(chunks) < limit,
    }
