"""Authentication and authorization for every request (the enforcement point).

Modes (setting ``auth``, ``KAMADO_AUTH``):

- ``auto`` (default): bound to a non-loopback address, every route but ``/healthz`` needs a token; bound
  to loopback, a request without a token acts as the local admin (zero setup on a laptop).
- ``required``: tokens everywhere, loopback included.
- ``off``: loopback only; requests without a token act as the local admin.

In every mode a request that presents an invalid token gets 401: a bad token is never ignored. The
decision is made before the body is read, so a refused upload costs nothing, and a denied call reaches
no route handler, so it has no side effect. Denials and every allowed change are audited.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kamado.api.platform import Platform
from kamado.core.errors import Forbidden, InvalidSpec, KamadoError, LimitExceeded, NotFound, Unauthorized
from kamado.core.projects import DEFAULT_PROJECT, PROJECT_HEADER, check_project_name, current_project
from kamado.core.settings import Settings
from kamado.security.actions import PUBLIC, SELF_SERVICE, SERVER_WIDE, UNMAPPED, action_for
from kamado.security.crypto import KeyRing
from kamado.security.injection import SecretInjector
from kamado.security.ratelimit import FailureLimiter
from kamado.security.roles import RoleAuthorizer
from kamado.security.secrets import SecretService
from kamado.security.service import Caller, SecurityService

log = logging.getLogger("kamado.auth")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MODES = ("auto", "required", "off")
READ_METHODS = ("GET", "HEAD", "OPTIONS")
CALLER_KEY = "kamado_caller"
#: Allowed calls not audited even though they are POSTs: high-rate data events, which CloudTrail also
#: leaves out by default (Lambda Invoke). Denied ones are always audited.
UNAUDITED_WHEN_ALLOWED = frozenset({"InvokeFunction"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK


@dataclass
class Security:
    """What the security routes need, kept on ``app.state.security``."""

    service: SecurityService
    secrets: SecretService
    token_file: Any
    require_token: bool
    limiter: FailureLimiter
    #: Pipelines' roles: who may attach a service account to a state machine, and what its Tasks may do.
    roles: RoleAuthorizer | None = None


def required_for(settings: Settings) -> bool:
    """Whether requests without a token are refused, or InvalidSpec for a mode that would be unsafe."""
    if settings.auth not in MODES:
        raise InvalidSpec(
            f"Unknown auth mode {settings.auth!r}; use one of {list(MODES)} (KAMADO_AUTH).",
            details=[{"field": "auth", "message": "unknown mode"}],
        )
    if settings.auth == "off" and not is_loopback(settings.host):
        raise InvalidSpec(
            f"auth=off is refused on {settings.host}: anyone who can reach that address could run code here. "
            "Use KAMADO_AUTH=auto or required (the default 'auto' already requires tokens off loopback).",
            details=[{"field": "auth", "message": "off is only allowed on loopback"}],
        )
    return settings.auth == "required" or (settings.auth == "auto" and not is_loopback(settings.host))


def install_security(app: FastAPI, platform: Platform, settings: Settings) -> Security:
    """Wire tokens, policies, audit and secrets into the app and every capability that runs user code."""
    from kamado.api.routes import security as routes
    from kamado.hosting.reconciler import HostingReconciler
    from kamado.pipelines.runner import ExecutionRunner
    from kamado.processing.reconciler import ProcessingReconciler
    from kamado.training.reconciler import TrainingReconciler
    from kamado.transform.reconciler import TransformReconciler

    try:
        require = required_for(settings)
    except InvalidSpec:
        platform.store.close()  # nothing else has started yet
        raise
    service = SecurityService(platform.store)
    token_file = service.bootstrap(settings.home)
    secrets = SecretService(service.store, KeyRing(settings.home))
    injector = SecretInjector(secrets)
    platform.training.secrets = injector
    platform.processing.secrets = injector
    platform.functions.secrets = injector
    platform.hosting.secrets = injector
    platform.transform.secrets = injector
    for r in platform.reconcilers:
        if isinstance(r, TrainingReconciler):
            r.secrets = injector
        elif isinstance(r, ProcessingReconciler):
            r.secrets.hooks = injector
        elif isinstance(r, HostingReconciler | TransformReconciler):
            r.ops.secrets = injector  # endpoint and batch-transform instances
    roles = RoleAuthorizer(service)
    for r in platform.reconcilers:
        if isinstance(r, ExecutionRunner):
            r.integrations.authorizer = roles  # Task states act as their state machine's service account
    sec = Security(
        service=service,
        secrets=secrets,
        token_file=token_file,
        require_token=require,
        limiter=FailureLimiter(),
        roles=roles,
    )
    app.state.security = sec
    app.include_router(routes.router, prefix="/api/v1")
    app.add_middleware(AuthMiddleware, security=sec)
    return sec


def caller_of(request: Request) -> Caller:
    caller = request.scope.get("state", {}).get(CALLER_KEY)
    if not isinstance(caller, Caller):
        raise Unauthorized("No authenticated caller; send 'Authorization: Bearer <token>'.")
    return caller


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, security: Security) -> None:
        self.app = app
        self.security = security
        self.limiter = security.limiter
        #: Projects seen to exist (there is no route that deletes one, so a hit stays true).
        self._known_projects: set[str] = {DEFAULT_PROJECT}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope.get("path", "")
        route = action_for(method, path)
        if route is not None and route.action == PUBLIC:
            await self.app(scope, receive, send)
            return
        action = route.action if route else UNMAPPED
        resource = route.resource if route else "*"
        client = (scope.get("client") or ("unknown", 0))[0]
        named = _project_header(scope)
        try:
            project = DEFAULT_PROJECT if named is None else check_project_name(named)
            bad_project: KamadoError | None = None
        except InvalidSpec as malformed:
            project, bad_project = DEFAULT_PROJECT, malformed
        # Server-wide objects (principals, secrets, the audit log, ...) belong to no project: they are always
        # authorised, and audited, against the default project (see SERVER_WIDE).
        authz_project = DEFAULT_PROJECT if action in SERVER_WIDE else project
        audit = {
            "action": action,
            "resource": resource,
            "source_ip": client,
            "method": method,
            "path": path,
            "project": authz_project,
        }

        token = _bearer(scope)
        if token is not None:
            caller = await to_thread.run_sync(self.security.service.authenticate, token)
            if caller is None:
                wait = self.limiter.record_failure(client)
                if (alert := self.limiter.alert_due()) is not None:
                    await self._alert(*alert, audit)
                if wait is not None:
                    err: KamadoError = LimitExceeded(
                        f"Too many failed authentication attempts from {client}; retry in {wait:.0f} s."
                    )
                    await _reject(send, err, {"retry-after": str(int(wait + 0.999))})
                    return
                await self._deny(send, Unauthorized(_BAD_TOKEN), audit, None, "invalid, expired or revoked token")
                return
        elif self.security.require_token:
            await self._deny(send, Unauthorized(_NO_TOKEN), audit, None, "no token")
            return
        else:
            local = self.security.service.cached_local_admin()  # no thread hop on the laptop fast path
            if local is None:
                local = await to_thread.run_sync(self.security.service.local_admin)
            caller = local

        if bad_project is None and not await self._project_exists(project):
            bad_project = NotFound(
                f"Project '{project}' named by the {PROJECT_HEADER} header does not exist; an admin creates it with "
                f"`kamado projects create {project}` (POST /api/v1/projects), or leave the header out to use "
                f"'{DEFAULT_PROJECT}'.",
                details={"field": PROJECT_HEADER, "project": project},
            )
        if bad_project is not None:
            await _reject(send, bad_project, {})
            return
        if action not in SELF_SERVICE and not caller.may(action, resource, authz_project):
            msg = (
                f"'{caller.principal}' is not allowed to {action} on '{resource}' in project '{authz_project}'; ask "
                "an admin for a role on that project that grants it (see docs/security.md for the roles and their "
                "actions)."
            )
            await self._deny(send, Forbidden(msg, details={"Action": action}), audit, caller.principal, "no role")
            return
        scope.setdefault("state", {})[CALLER_KEY] = caller
        changed = method not in READ_METHODS and action not in UNAUDITED_WHEN_ALLOWED
        recorded = False
        principal = caller.principal

        async def record(status: int) -> None:
            nonlocal recorded
            if not recorded and (changed or status in (401, 403)):
                recorded = True
                outcome = "Denied" if status in (401, 403) else "Allowed"
                await self._audit(audit, principal, outcome, status, "" if outcome == "Allowed" else "route")

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Before the client hears back: a caller that saw its change acknowledged finds it audited.
                await record(int(message["status"]))
            await send(message)

        scoped = current_project.set(project)  # the store confines the route to this project
        try:
            await self.app(scope, receive, audited_send)
        finally:
            current_project.reset(scoped)
            await record(500)  # no response started: the route crashed (a no-op when already recorded)

    async def _project_exists(self, project: str) -> bool:
        if project in self._known_projects:
            return True
        if await to_thread.run_sync(self.security.service.store.project_exists, project):
            self._known_projects.add(project)
            return True
        return False

    async def _deny(
        self, send: Send, err: KamadoError, audit: dict[str, str], principal: str | None, reason: str
    ) -> None:
        headers = {"www-authenticate": 'Bearer realm="kamado"'} if err.http_status == 401 else {}
        await self._audit(audit, principal, "Denied", err.http_status, reason)  # recorded before the answer
        await _reject(send, err, headers)

    async def _alert(self, failures: int, addresses: int, audit: dict[str, str]) -> None:
        reason = (
            f"possible token guessing: {failures} failed authentications from {addresses} address(es) in the last "
            f"{self.limiter.window_s:g} s"
        )
        log.warning("%s; see GET /api/v1/audit?Action=AuthenticationAlert", reason)
        alert = {**audit, "action": "AuthenticationAlert", "resource": "*"}
        await self._audit(alert, None, "Alert", 401, reason)

    async def _audit(
        self, audit: dict[str, str], principal: str | None, outcome: str, status: int, reason: str
    ) -> None:
        def write() -> None:
            self.security.service.audit(principal=principal, outcome=outcome, status=status, reason=reason, **audit)

        await to_thread.run_sync(write)


_NO_TOKEN = (
    "This kamado server requires an API token: send 'Authorization: Bearer <token>' (the SDK and CLI read "
    "KAMADO_TOKEN); an admin creates tokens with `kamado tokens create`."
)
_BAD_TOKEN = "The API token is invalid, expired or revoked; create a new one with `kamado tokens create`."


def _project_header(scope: Scope) -> str | None:
    """The project a request names (``X-Kamado-Project``), or None when it names none."""
    wanted = PROJECT_HEADER.lower().encode()
    for key, value in scope.get("headers", []):
        if key == wanted:
            return value.decode("latin-1").strip()
    return None


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            raw = value.decode("latin-1").strip()
            scheme, _, token = raw.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else raw
    return None


async def _reject(send: Send, err: KamadoError, headers: dict[str, str]) -> None:
    body = json.dumps(err.to_problem()).encode()
    raw = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": err.http_status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
