"""Pipeline routes: Step Functions' state machine and execution operations as REST."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from kamado.api.auth import caller_of
from kamado.api.platform import Platform
from kamado.api.routes.project_view import with_project
from kamado.core.clock import iso_time
from kamado.pipelines.spec import (
    CreateStateMachineRequest,
    StartExecutionRequest,
    StopExecutionRequest,
    UpdateStateMachineRequest,
)

router = APIRouter(tags=["pipelines"])


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _pass_role(request: Request, role_arn: str | None) -> bool:
    """A state machine may only run as a service account whose every right the caller holds (PassRole).
    True when its Tasks will be held to that account's roles (the ARN names a service account)."""
    security = getattr(request.app.state, "security", None)
    if role_arn and security is not None and security.roles is not None:
        return bool(security.roles.check_pass(caller_of(request), role_arn))
    return False


@router.post("/state-machines", status_code=201)
def create_state_machine(request: Request, body: CreateStateMachineRequest) -> dict[str, str]:
    enforced = _pass_role(request, body.roleArn)
    rec = _platform(request).pipelines.create_state_machine(body, role_enforced=enforced)
    return {"stateMachineArn": rec.arn, "name": rec.name, "creationDate": iso_time(rec.created_at) or ""}


@router.get("/state-machines")
def list_state_machines(
    request: Request,
    maxResults: Annotated[int, Query(ge=1, le=100)] = 50,
    nextToken: str | None = None,
) -> dict[str, Any]:
    return _platform(request).pipelines.list_state_machines(max_results=maxResults, next_token=nextToken)


@router.get("/state-machines/{name}")
def describe_state_machine(request: Request, name: str) -> dict[str, Any]:
    return with_project(_platform(request).pipelines.describe_state_machine(name), "project")


@router.put("/state-machines/{name}")
def update_state_machine(request: Request, name: str, body: UpdateStateMachineRequest) -> dict[str, Any]:
    enforced = _pass_role(request, body.roleArn) if body.roleArn is not None else None
    service = _platform(request).pipelines
    service.update_state_machine(name, body, role_enforced=enforced)
    described = service.describe_state_machine(name)
    return {"updateDate": described["updateDate"], "revisionId": described["revisionId"]}


@router.delete("/state-machines/{name}", status_code=204)
def delete_state_machine(request: Request, name: str) -> Response:
    _platform(request).pipelines.delete_state_machine(name)
    return Response(status_code=204)


@router.post("/state-machines/{name}/executions")
def start_execution(request: Request, name: str, body: StartExecutionRequest, response: Response) -> dict[str, str]:
    platform = _platform(request)
    rec, created = platform.pipelines.start_execution(name, body)
    platform.wake()
    response.status_code = 201 if created else 200
    return {
        "executionArn": rec.arn,
        "name": rec.spec["name"],
        "startDate": iso_time(rec.created_at) or "",
    }


@router.get("/state-machines/{name}/executions")
def list_executions(
    request: Request,
    name: str,
    statusFilter: str | None = None,
    maxResults: Annotated[int, Query(ge=1, le=100)] = 50,
    nextToken: str | None = None,
) -> dict[str, Any]:
    return _platform(request).pipelines.list_executions(
        name, status_filter=statusFilter, max_results=maxResults, next_token=nextToken
    )


@router.get("/state-machines/{name}/executions/{execution}")
def describe_execution(request: Request, name: str, execution: str) -> dict[str, Any]:
    return with_project(_platform(request).pipelines.describe_execution(name, execution), "project")


@router.post("/state-machines/{name}/executions/{execution}/stop")
def stop_execution(
    request: Request, name: str, execution: str, body: StopExecutionRequest | None = None
) -> dict[str, Any]:
    platform = _platform(request)
    platform.pipelines.stop_execution(name, execution, body or StopExecutionRequest())
    platform.wake()
    return {}


@router.get("/state-machines/{name}/executions/{execution}/history")
def execution_history(
    request: Request,
    name: str,
    execution: str,
    maxResults: Annotated[int, Query(ge=1, le=1000)] = 1000,
    nextToken: str | None = None,
    reverseOrder: bool = False,
) -> dict[str, Any]:
    return _platform(request).pipelines.history(
        name, execution, max_results=maxResults, next_token=nextToken, reverse_order=reverseOrder
    )
