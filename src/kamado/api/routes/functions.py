"""Function routes: Lambda's CreateFunction/GetFunction/List/Delete/Invoke as REST, dead letters, map runs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from kamado.api.platform import Platform
from kamado.api.routes.hosting import ListParams
from kamado.core.errors import PayloadTooLarge
from kamado.functions.service import MAX_PAYLOAD_BYTES
from kamado.functions.spec import CreateFunctionRequest, StartMapRunRequest

router = APIRouter(tags=["functions"])
#: Lambda's header marking a function error in a 200 response ("Unhandled": the handler raised).
FUNCTION_ERROR_HEADER = "X-Kamado-Function-Error"


def _platform(request: Request) -> Platform:
    return request.app.state.platform


@router.post("/functions", status_code=201)
def create_function(request: Request, body: CreateFunctionRequest) -> dict[str, Any]:
    rec = _platform(request).functions.create(body)
    return {"FunctionName": rec.name, "FunctionArn": rec.arn}


@router.get("/functions")
def list_functions(request: Request, query: ListParams) -> dict[str, Any]:
    return _platform(request).functions.list(**query)


@router.get("/functions/{name}")
def get_function(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).functions.describe(name)


@router.delete("/functions/{name}")
def delete_function(request: Request, name: str) -> dict[str, Any]:
    _platform(request).functions.delete(name)
    return {}


async def _body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes Lambda's 6 MB limit (never buffered beyond it)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"The request payload is larger than the limit of {MAX_PAYLOAD_BYTES} bytes.")
    return bytes(data)


@router.post("/functions/{name}/invocations")
async def invoke_function(
    request: Request,
    name: str,
    invocation_type: Annotated[str, Header(alias="X-Kamado-Invocation-Type")] = "RequestResponse",
) -> Response:
    """RequestResponse: the result, or 200 with ``X-Kamado-Function-Error`` and the error. Event: 202."""
    from starlette.concurrency import run_in_threadpool

    platform = _platform(request)
    payload = await _body(request)
    if invocation_type == "Event":
        rid = await run_in_threadpool(platform.functions.invoke_async, name, payload)
        platform.wake()
        return Response(status_code=202, headers={"X-Kamado-Request-Id": rid})
    outcome = await run_in_threadpool(platform.functions.invoke, name, payload)
    headers = {"X-Kamado-Request-Id": str(outcome.get("requestId", ""))}
    if outcome.get("ok"):
        return Response(json.dumps(outcome.get("result")), media_type="application/json", headers=headers)
    headers[FUNCTION_ERROR_HEADER] = "Unhandled"
    err = {k: outcome[k] for k in ("errorType", "errorMessage", "stackTrace", "reason") if outcome.get(k) is not None}
    return Response(json.dumps(err), media_type="application/json", headers=headers)


@router.get("/functions/{name}/dead-letters")
def list_dead_letters(
    request: Request,
    name: str,
    MaxResults: Annotated[int, Query(ge=1, le=100)] = 100,
    NextToken: str | None = None,
) -> dict[str, Any]:
    return _platform(request).functions.list_dead_letters(name, limit=MaxResults, next_token=NextToken)


@router.post("/functions/{name}/dead-letters/{request_id}/replay")
def replay_dead_letter(request: Request, name: str, request_id: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.functions.replay(name, request_id)
    platform.wake()
    return {}


# -- map runs ---------------------------------------------------------------------------------------------
@router.post("/map-runs", status_code=201)
def start_map_run(request: Request, body: StartMapRunRequest) -> dict[str, Any]:
    platform = _platform(request)
    rec = platform.map_runs.create(body)
    platform.wake()
    return {"MapRunName": rec.name, "MapRunArn": rec.arn}


@router.get("/map-runs")
def list_map_runs(request: Request, query: ListParams) -> dict[str, Any]:
    return _platform(request).map_runs.list(**query)


@router.get("/map-runs/{name}")
def describe_map_run(request: Request, name: str) -> dict[str, Any]:
    return _platform(request).map_runs.describe(name)


@router.post("/map-runs/{name}/stop")
def stop_map_run(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.map_runs.stop(name)
    platform.wake()
    return {}


@router.post("/map-runs/{name}/redrive")
def redrive_map_run(request: Request, name: str) -> dict[str, Any]:
    platform = _platform(request)
    platform.map_runs.redrive(name)
    platform.wake()
    return {}
