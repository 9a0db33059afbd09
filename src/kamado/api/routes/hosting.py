"""Hosting routes: SageMaker's Model, EndpointConfig and Endpoint operations as REST.

Invocations do not pass through here: they go to the router (the data plane), whose address is in
``DescribeEndpoint``'s ``InvocationUrl`` and in ``GET /api/v1/info``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from kamado.api.platform import Platform
from kamado.api.routes.project_view import with_project, with_projects
from kamado.core.clock import iso_time
from kamado.core.errors import NotFound
from kamado.hosting.service import ENDPOINT, ENDPOINT_CONFIG, MODEL, summary_endpoint
from kamado.hosting.spec import (
    CreateEndpointConfigRequest,
    CreateEndpointRequest,
    CreateModelRequest,
    ScalingPolicy,
    UpdateEndpointRequest,
    UpdateEndpointWeightsAndCapacitiesRequest,
)

router = APIRouter(tags=["hosting"])
ListToken = Annotated[str | None, Query(max_length=8192)]
NameFilter = Annotated[str | None, Query(max_length=63)]


def _platform(request: Request) -> Platform:
    return request.app.state.platform


# -- models ------------------------------------------------------------------------------------------------
@router.post("/models", status_code=201)
def create_model(request: Request, body: CreateModelRequest) -> dict[str, str]:
    rec = _platform(request).hosting.create_model(body)
    return {"ModelArn": rec.arn}


def _page(request: Request, kind: str, key: str, name_field: str, query: dict[str, Any]) -> dict[str, Any]:
    """One page of a List* call for models or endpoint configs, in SageMaker's summary shape."""
    items, token = _platform(request).hosting.list(kind, **query)
    summaries = [
        {name_field: r.name, name_field.replace("Name", "Arn"): r.arn, "CreationTime": iso_time(r.created_at)}
        for r in items
    ]
    out: dict[str, Any] = with_projects({key: summaries}, key)
    if token:
        out["NextToken"] = token
    return out


def _query(
    NameContains: NameFilter = None,
    SortBy: str = "CreationTime",
    SortOrder: str = "Descending",
    MaxResults: int = 50,
    NextToken: ListToken = None,
) -> dict[str, Any]:
    return {
        "name_contains": NameContains,
        "sort_by": SortBy,
        "sort_order": SortOrder,
        "max_results": MaxResults,
        "next_token": NextToken,
    }


ListParams = Annotated[dict[str, Any], Depends(_query)]


@router.get("/models")
def list_models(request: Request, query: ListParams) -> dict[str, Any]:
    return _page(request, MODEL, "Models", "ModelName", query)


@router.get("/models/{name}")
def describe_model(request: Request, name: str) -> dict[str, Any]:
    return with_project(_platform(request).hosting.describe_model(name))


@router.delete("/models/{name}")
def delete_model(request: Request, name: str) -> dict[str, Any]:
    _platform(request).hosting.delete_model(name)
    return {}


# -- endpoint configs --------------------------------------------------------------------------------------
@router.post("/endpoint-configs", status_code=201)
def create_endpoint_config(request: Request, body: CreateEndpointConfigRequest) -> dict[str, str]:
    rec = _platform(request).hosting.create_endpoint_config(body)
    return {"EndpointConfigArn": rec.arn}


@router.get("/endpoint-configs")
def list_endpoint_configs(request: Request, query: ListParams) -> dict[str, Any]:
    return _page(request, ENDPOINT_CONFIG, "EndpointConfigs", "EndpointConfigName", query)


@router.get("/endpoint-configs/{name}")
def describe_endpoint_config(request: Request, name: str) -> dict[str, Any]:
    return with_project(_platform(request).hosting.describe_endpoint_config(name))


@router.delete("/endpoint-configs/{name}")
def delete_endpoint_config(request: Request, name: str) -> dict[str, Any]:
    _platform(request).hosting.delete_endpoint_config(name)
    return {}


# -- endpoints ---------------------------------------------------------------------------------------------
@router.post("/endpoints", status_code=201)
def create_endpoint(request: Request, body: CreateEndpointRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.hosting.create_endpoint(body)
    platform.wake()
    return {"EndpointArn": rec.arn}


@router.get("/endpoints")
def list_endpoints(request: Request, query: ListParams, StatusEquals: str | None = None) -> dict[str, Any]:
    items, token = _platform(request).hosting.list(ENDPOINT, status_equals=StatusEquals, **query)
    out: dict[str, Any] = with_projects({"Endpoints": [summary_endpoint(r) for r in items]}, "Endpoints")
    if token:
        out["NextToken"] = token
    return out


@router.get("/endpoints/{name}")
def describe_endpoint(
    request: Request, name: str, MetricsWindowSeconds: Annotated[float, Query(ge=0, le=300)] = 60
) -> dict[str, Any]:
    return with_project(_platform(request).hosting.describe_endpoint(name, metrics_window_s=MetricsWindowSeconds))


@router.post("/endpoints/{name}/update")
def update_endpoint(request: Request, name: str, body: UpdateEndpointRequest) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.hosting.update_endpoint(name, body)
    platform.wake()
    return {"EndpointArn": rec.arn}


@router.post("/endpoints/{name}/weights-and-capacities")
def update_weights_and_capacities(
    request: Request, name: str, body: UpdateEndpointWeightsAndCapacitiesRequest
) -> dict[str, str]:
    platform = _platform(request)
    rec = platform.hosting.update_weights_and_capacities(name, body)
    platform.wake()
    return {"EndpointArn": rec.arn}


@router.delete("/endpoints/{name}")
def delete_endpoint(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.hosting.delete_endpoint(name)
    platform.wake()
    return {}


@router.put("/endpoints/{name}/variants/{variant}/scaling-policy")
def put_scaling_policy(request: Request, name: str, variant: str, body: ScalingPolicy) -> dict[str, Any]:
    platform = _platform(request)
    platform.hosting.put_scaling_policy(name, variant, body)
    platform.wake()
    return {}


@router.delete("/endpoints/{name}/variants/{variant}/scaling-policy")
def delete_scaling_policy(request: Request, name: str, variant: str) -> dict[str, Any]:
    _platform(request).hosting.delete_scaling_policy(name, variant)
    return {}


@router.get("/endpoints/{name}/logs", response_class=PlainTextResponse)
def endpoint_logs(
    request: Request, name: str, InstanceId: Annotated[str | None, Query(max_length=200)] = None
) -> PlainTextResponse:
    """The recent output of the endpoint's instances (the model servers' stdout and stderr)."""
    platform = _platform(request)
    rec = platform.hosting.get_endpoint(name)
    parts: list[str] = []
    for fleet in rec.status.get("Fleets", {}).values():
        for variant in fleet["Variants"].values():
            for inst in variant["Instances"]:
                if InstanceId and inst["InstanceId"] != InstanceId:
                    continue
                parts.append(f"==> {inst['InstanceId']} ({inst['State']}) <==\n{platform.hosting_logs(inst)}\n")
    if InstanceId and not parts:
        raise NotFound(f"Endpoint '{name}' has no instance '{InstanceId}'.", details={"InstanceId": InstanceId})
    return PlainTextResponse("".join(parts))
