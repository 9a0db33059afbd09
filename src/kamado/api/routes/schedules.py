"""Schedule and trigger routes: EventBridge Scheduler-shaped schedules and artifact-prefix triggers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from kamado.api.platform import Platform
from kamado.pipelines.schedules import CreateScheduleRequest, CreateTriggerRequest

router = APIRouter(tags=["pipelines"])


class SetStateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    State: Literal["ENABLED", "DISABLED"]


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.post("/schedules", status_code=201)
def create_schedule(request: Request, body: CreateScheduleRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.schedules.create_schedule(body)
    platform.wake()
    return {"ScheduleArn": rec.arn}


@router.get("/schedules")
def list_schedules(
    request: Request, MaxResults: Annotated[int, Query(ge=1, le=100)] = 50, NextToken: str | None = None
) -> dict[str, Any]:
    return _platform(request).schedules.list_schedules(max_results=MaxResults, next_token=NextToken)


@router.get("/schedules/{name}")
def describe_schedule(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).schedules.describe_schedule(name)


@router.post("/schedules/{name}/state")
def set_schedule_state(request: Request, name: str, body: SetStateRequest) -> dict[str, Any]:
    platform = _platform(request)
    platform.schedules.set_schedule_state(name, body.State)
    platform.wake()
    return platform.schedules.describe_schedule(name)


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(request: Request, name: str) -> Response:
    _platform(request).schedules.delete_schedule(name)
    return Response(status_code=204)


@router.post("/triggers", status_code=201)
def create_trigger(request: Request, body: CreateTriggerRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.schedules.create_trigger(body)
    platform.wake()
    return {"TriggerArn": rec.arn}


@router.get("/triggers")
def list_triggers(
    request: Request, MaxResults: Annotated[int, Query(ge=1, le=100)] = 50, NextToken: str | None = None
) -> dict[str, Any]:
    return _platform(request).schedules.list_triggers(max_results=MaxResults, next_token=NextToken)


@router.get("/triggers/{name}")
def describe_trigger(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).schedules.describe_trigger(name)


@router.post("/triggers/{name}/state")
def set_trigger_state(request: Request, name: str, body: SetStateRequest) -> dict[str, Any]:
    platform = _platform(request)
    platform.schedules.set_trigger_state(name, body.State)
    return platform.schedules.describe_trigger(name)


@router.delete("/triggers/{name}", status_code=204)
def delete_trigger(request: Request, name: str) -> Response:
    _platform(request).schedules.delete_trigger(name)
    return Response(status_code=204)
