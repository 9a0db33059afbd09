"""Transform-job routes: SageMaker's Create/Describe/List/Stop TransformJob."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kamado.api.platform import Platform
from kamado.transform.spec import CreateTransformJobRequest

router = APIRouter(tags=["transform-jobs"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.post("/transform-jobs", status_code=201)
def create_transform_job(request: Request, body: CreateTransformJobRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.transform.create(body)
    platform.wake()
    return {"TransformJobArn": rec.arn}


@router.get("/transform-jobs")
def list_transform_jobs(
    request: Request,
    StatusEquals: str | None = None,
    NameContains: Annotated[str | None, Query(max_length=63)] = None,
    SortBy: str = "CreationTime",
    SortOrder: str = "Descending",
    MaxResults: int = 50,
    NextToken: Annotated[str | None, Query(max_length=8192)] = None,
) -> dict[str, Any]:
    return _platform(request).transform.list(
        status_equals=StatusEquals,
        name_contains=NameContains,
        sort_by=SortBy,
        sort_order=SortOrder,
        max_results=MaxResults,
        next_token=NextToken,
    )


@router.get("/transform-jobs/{name}")
def describe_transform_job(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).transform.describe(name)


@router.post("/transform-jobs/{name}/stop")
def stop_transform_job(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.transform.stop(name)
    platform.wake()
    return {}
