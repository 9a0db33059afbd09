"""Security routes: callers, tokens, principals and role bindings, projects, audit log, secrets.

Authorization happens in :mod:`kamado.api.auth` before these run; the self-service routes (tokens,
whoami) then limit a caller to its own objects, and minting or granting never exceeds the caller's rights.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kamado.api.auth import Security, caller_of
from kamado.core.errors import InvalidSpec
from kamado.core.names import NAME_HINT, NAME_PATTERN
from kamado.security.service import check_binding

router = APIRouter(tags=["security"])


def _sec(request: Request) -> Security:
    return request.app.state.security


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(v: str) -> str:
    if not NAME_PATTERN.fullmatch(v):
        raise ValueError(NAME_HINT)
    return v


class RoleBindingSpec(_Shape):
    Project: Annotated[str, Field(min_length=1, max_length=64)] = "default"
    Role: Literal["viewer", "editor", "admin", "invoker"]
    Resource: Annotated[str, Field(min_length=1, max_length=128)] = "*"


class CreatePrincipalRequest(_Shape):
    Name: str
    Type: Literal["User", "ServiceAccount"] = "User"
    RoleBindings: Annotated[list[RoleBindingSpec], Field(max_length=50)] = []

    @field_validator("Name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _name(v)


class CreateTokenRequest(_Shape):
    Principal: str | None = None
    ExpiresInSeconds: Annotated[int | None, Field(ge=1, le=10 * 365 * 86400)] = None
    Description: Annotated[str, Field(max_length=256)] = ""
    #: Limit the token to these bindings (each within its principal's); absent: all of the principal's.
    RoleBindings: Annotated[list[RoleBindingSpec] | None, Field(max_length=50)] = None


class CreateProjectRequest(_Shape):
    Name: str
    Description: Annotated[str, Field(max_length=256)] = ""

    @field_validator("Name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _name(v)


class CreateSecretRequest(_Shape):
    Name: Annotated[str, Field(min_length=1, max_length=128)]
    Value: Annotated[str, Field(min_length=1, max_length=8192)]
    Description: Annotated[str, Field(max_length=256)] = ""


class RotateSecretRequest(_Shape):
    Value: Annotated[str, Field(min_length=1, max_length=8192)]
    Description: Annotated[str | None, Field(max_length=256)] = None


def _principal_view(p: Any) -> dict[str, Any]:
    return {
        "Name": p.name,
        "Type": p.type,
        "CreatedBy": p.created_by,
        "CreationTime": p.created_at,
        "RoleBindings": [{"Project": b.project, "Role": b.role, "Resource": b.resource} for b in p.bindings],
    }


# -- identity and tokens ----------------------------------------------------------------------------------
@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    caller = caller_of(request)
    return {
        "Principal": caller.principal,
        "TokenId": caller.token_id,
        "RoleBindings": [{"Project": b.project, "Role": b.role, "Resource": b.resource} for b in caller.bindings],
        "TokenScope": None
        if caller.scope is None
        else [{"Project": b.project, "Role": b.role, "Resource": b.resource} for b in caller.scope],
    }


@router.post("/tokens", status_code=201)
def create_token(request: Request, body: CreateTokenRequest) -> dict[str, Any]:
    """The token value is in this response only; kamado keeps a salted hash of it."""
    scope = None
    if body.RoleBindings is not None:
        scope = [check_binding(b.Project, b.Role, b.Resource) for b in body.RoleBindings]
    plaintext, rec = _sec(request).service.create_token(
        caller_of(request),
        body.Principal,
        description=body.Description,
        expires_in_s=body.ExpiresInSeconds,
        scope=scope,
    )
    return {**rec.public(), "Token": plaintext}


@router.get("/tokens")
def list_tokens(request: Request) -> dict[str, Any]:
    return {"Tokens": _sec(request).service.list_tokens(caller_of(request))}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(request: Request, token_id: Annotated[str, Path(max_length=32)]) -> Response:
    _sec(request).service.revoke_token(caller_of(request), token_id)
    return Response(status_code=204)


# -- principals, roles, projects --------------------------------------------------------------------------
@router.post("/principals", status_code=201)
def create_principal(request: Request, body: CreatePrincipalRequest) -> dict[str, Any]:
    sec = _sec(request)
    bindings = [check_binding(b.Project, b.Role, b.Resource) for b in body.RoleBindings]
    sec.service.create_principal(caller_of(request), body.Name, body.Type, bindings)
    return _principal_view(sec.service.store.get_principal(body.Name))


@router.get("/principals")
def list_principals(request: Request) -> dict[str, Any]:
    return {"Principals": [_principal_view(p) for p in _sec(request).service.store.list_principals()]}


@router.get("/principals/{name}")
def describe_principal(request: Request, name: str) -> dict[str, Any]:
    return _principal_view(_sec(request).service.store.get_principal(name))


@router.delete("/principals/{name}", status_code=204)
def delete_principal(request: Request, name: str) -> Response:
    _sec(request).service.delete_principal(caller_of(request), name)
    return Response(status_code=204)


@router.post("/principals/{name}/role-bindings")
def put_role_binding(request: Request, name: str, body: RoleBindingSpec) -> dict[str, Any]:
    sec = _sec(request)
    sec.service.put_binding(caller_of(request), name, check_binding(body.Project, body.Role, body.Resource))
    return _principal_view(sec.service.store.get_principal(name))


@router.delete("/principals/{name}/role-bindings")
def delete_role_binding(
    request: Request,
    name: str,
    Role: Literal["viewer", "editor", "admin", "invoker"],
    Project: Annotated[str, Query(min_length=1, max_length=64)] = "default",
    Resource: Annotated[str, Query(min_length=1, max_length=128)] = "*",
) -> dict[str, Any]:
    sec = _sec(request)
    sec.service.delete_binding(caller_of(request), name, check_binding(Project, Role, Resource))
    return _principal_view(sec.service.store.get_principal(name))


@router.post("/projects", status_code=201)
def create_project(request: Request, body: CreateProjectRequest) -> dict[str, str]:
    _sec(request).service.store.create_project(body.Name, body.Description)
    return {"Name": body.Name}


@router.get("/projects")
def list_projects(request: Request) -> dict[str, Any]:
    return {"Projects": _sec(request).service.store.list_projects()}


# -- audit --------------------------------------------------------------------------------------------------
def _page_token(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode()


def _before_id(token: str | None) -> int | None:
    if token is None:
        return None
    try:
        kind, _, raw = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != "audit":
            raise ValueError
        return int(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidSpec(
            "NextToken is not one this API returned; pass the NextToken of the previous page unchanged.",
            details=[{"field": "NextToken", "message": "malformed"}],
        ) from None


@router.get("/audit")
async def list_audit_events(
    request: Request,
    Principal: Annotated[str | None, Query(max_length=64)] = None,
    Action: Annotated[str | None, Query(max_length=64)] = None,
    Outcome: Literal["Allowed", "Denied"] | None = None,
    Project: Annotated[str | None, Query(max_length=64)] = None,
    StartTime: float | None = None,
    EndTime: float | None = None,
    MaxResults: Annotated[int, Query(ge=1, le=100)] = 50,
    NextToken: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """Newest first. Events carry names, addresses and outcomes only: never a body, header or token."""
    events = await run_in_threadpool(
        _sec(request).service.store.list_audit,
        principal=Principal,
        action=Action,
        outcome=Outcome,
        project=Project,
        after=StartTime,
        before=EndTime,
        before_id=_before_id(NextToken),
        limit=MaxResults,
    )
    out: dict[str, Any] = {
        "AuditEvents": [
            {
                "EventId": e.id,
                "EventTime": e.ts,
                "Principal": e.principal,
                "Action": e.action,
                "Resource": e.resource,
                "Project": e.project,
                "Outcome": e.outcome,
                "HttpStatus": e.status,
                "SourceIp": e.source_ip,
                "Method": e.method,
                "Path": e.path,
                "Reason": e.reason,
            }
            for e in events
        ]
    }
    if len(events) == MaxResults:
        out["NextToken"] = _page_token(events[-1].id)
    return out


# -- secrets ------------------------------------------------------------------------------------------------
@router.post("/secrets", status_code=201)
def create_secret(request: Request, body: CreateSecretRequest) -> dict[str, Any]:
    return _sec(request).secrets.create(
        body.Name, body.Value, description=body.Description, by=caller_of(request).principal
    )


@router.get("/secrets")
def list_secrets(request: Request) -> dict[str, Any]:
    return {"Secrets": _sec(request).secrets.list()}


@router.get("/secrets/{name:path}")
def describe_secret(request: Request, name: str) -> dict[str, Any]:
    """Metadata only: there is no route that returns a secret's value."""
    return _sec(request).secrets.describe(name)


@router.put("/secrets/{name:path}")
def rotate_secret(request: Request, name: str, body: RotateSecretRequest) -> dict[str, Any]:
    return _sec(request).secrets.rotate(name, body.Value, description=body.Description, by=caller_of(request).principal)


@router.delete("/secrets/{name:path}", status_code=204)
def delete_secret(request: Request, name: str) -> Response:
    _sec(request).secrets.delete(name)
    return Response(status_code=204)


@router.post("/master-key/rotate")
def rotate_master_key(request: Request) -> dict[str, Any]:
    return _sec(request).secrets.rotate_master_key()
