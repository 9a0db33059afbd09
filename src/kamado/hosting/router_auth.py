"""Who may call ``InvokeEndpoint`` on the router: the data plane's enforcement point.

The control plane decides the mode and writes it to ``HOME/hosting/router-auth.json`` (0600) before it starts
or reuses a router: ``required`` (its own rule, :func:`requires_token`) and the metadata store's URL. The router
reads the file at start and again whenever it changes (checked every second), so a control plane restarted
with another mode is obeyed by a router that outlived it.

- **Required**: an invocation needs ``Authorization: Bearer <kamado token>`` whose principal may perform
  ``InvokeEndpoint`` on that endpoint (roles ``invoker``, ``editor``, ``admin``; :mod:`kamado.security.policy`).
- **Not required** (loopback ``auto``, ``off``): no token is needed, as before; a token that *is* presented is
  still checked (an invalid one is 401, one whose principal lacks the right is 403), as on the control plane.

Tokens are verified against the same security tables the control plane uses (the store opened without
migrating; :meth:`SecurityService.authenticate` compares in constant time). A successful verification is
cached for :data:`CACHE_TTL_S`, so a revoked token or a removed role stops working within that time without a
database read per request. Failures are never cached and are limited per client address (429 after 20 a
minute, :class:`~kamado.security.ratelimit.FailureLimiter`). The decision is made from the headers alone,
before the body is read and before anything is sent to a model instance; 401 and 403 are audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.core.errors import NotFound
from kamado.core.projects import DEFAULT_PROJECT
from kamado.security.actions import INVOKE_ENDPOINT
from kamado.security.ratelimit import FailureLimiter
from kamado.security.service import Caller, SecurityService

log = logging.getLogger("kamado.router")

CONFIG_FILE = "router-auth.json"
ACTION = INVOKE_ENDPOINT
#: The store kind of an endpoint (kamado.hosting.service.ENDPOINT; not imported, to keep the router lean).
ENDPOINT_KIND = "endpoint"
#: How long a verified token is trusted without asking the database again (revocation delay, at most).
CACHE_TTL_S = 2.0
MAX_CACHED = 10_000
#: Addresses the control plane treats as loopback (kamado.api.auth.LOOPBACK; hosting may not import api).
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_AUTHORIZATION = b"authorization"


def requires_token(auth: str, host: str, router_host: str) -> bool:
    """The control plane's rule for its own routes, applied to the router: ``required``, or ``auto`` when
    either the control plane or the router listens on an address other than loopback."""
    if auth == "required":
        return True
    return auth == "auto" and not (host in LOOPBACK and router_host in LOOPBACK)


@dataclass(frozen=True)
class RouterAuthConfig:
    required: bool
    #: The metadata store holding tokens and role bindings; None: no token can be verified.
    database_url: str | None

    def dump(self) -> str:
        return json.dumps({"required": self.required, "database_url": self.database_url})

    @classmethod
    def load(cls, path: Path) -> RouterAuthConfig | None:
        """The configuration in ``path``, or None when there is none (a router started by hand)."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        url = data.get("database_url")
        return cls(required=bool(data["required"]), database_url=url if isinstance(url, str) else None)

    @property
    def mode(self) -> str:
        return "required" if self.required else "optional"


def write_config(path: Path, config: RouterAuthConfig) -> None:
    """Atomically and readable by the owner only (it holds the database URL, which may carry a password)."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(config.dump())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Denial:
    """Why an invocation is refused, in the router's SageMaker-style error shape."""

    status: int
    error_type: str
    code: str
    message: str
    #: Counted under this reason in ``kamado_unrouted_requests``.
    reason: str
    retry_after_s: float | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.status == 401:
            return [(b"www-authenticate", b'Bearer realm="kamado"')]
        if self.retry_after_s is not None:
            return [(b"retry-after", str(int(self.retry_after_s + 0.999)).encode())]
        return []

    def body(self) -> dict[str, Any]:
        return {"ErrorCode": self.code, "Message": self.message}


_NO_TOKEN = (
    "This endpoint requires an API token: send 'Authorization: Bearer <token>' (the SDK sends KAMADO_TOKEN); "
    "an admin creates one with `kamado tokens create`."
)
_BAD_TOKEN = "The API token is invalid, expired or revoked; create a new one with `kamado tokens create`."
_NO_VERIFIER = (
    "This router cannot verify API tokens (it has no router-auth.json from a control plane); start it through "
    "`kamado server`, or send the request without a token."
)


def bearer(scope: dict[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == _AUTHORIZATION:
            raw = value.decode("latin-1").strip()
            scheme, _, token = raw.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else raw
    return None


class RouterAuth:
    """Decides invocations for one router. Runs on the event loop; database reads go to a thread."""

    def __init__(self, config_path: Path | None = None, *, limiter: FailureLimiter | None = None) -> None:
        self._path = config_path
        self._stamp: tuple[int, int] | None = None
        self.config: RouterAuthConfig | None = None
        self._service: SecurityService | None = None
        self._db: Any = None
        self._cache: OrderedDict[bytes, tuple[float, Caller]] = OrderedDict()
        #: Endpoint name -> (expiry, project): an endpoint's project is fixed for its life, but a deleted
        #: endpoint's name may come back in another project, so entries expire like the token cache.
        self._projects: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.limiter = limiter or FailureLimiter()
        self.reload()

    @property
    def mode(self) -> str:
        """``required``, ``optional`` (tokens checked when sent) or ``none`` (no configuration: no checks)."""
        return self.config.mode if self.config is not None else "none"

    # -- configuration --------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the configuration file if it changed since the last read (called every second)."""
        if self._path is None:
            return
        try:
            st = self._path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            config = RouterAuthConfig.load(self._path)
        except (OSError, ValueError, KeyError) as exc:
            log.error("unreadable %s (%s): refusing every invocation until it is fixed", self._path, exc)
            config = RouterAuthConfig(required=True, database_url=None)
        if config != self.config:
            self._open(config)

    def _open(self, config: RouterAuthConfig | None) -> None:
        old, self._db, self._service = self._db, None, None
        self._cache.clear()
        self._projects.clear()
        self.config = config
        if config is not None and config.database_url:
            from kamado.store.sql import SqlStore

            try:
                self._db = SqlStore(config.database_url, migrate=False)  # the control plane migrates, not us
                self._service = SecurityService(self._db)
            except Exception:
                log.exception("cannot open the metadata store for token checks; tokens will be refused")
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        if config is not None:
            log.info("invocation auth: %s", self.mode)

    def close(self) -> None:
        self._open(None)

    # -- decisions ------------------------------------------------------------------------------------------
    async def check(self, scope: dict[str, Any], endpoint: str) -> Denial | None:
        """None when the invocation may proceed; else why not. Reads headers only, never the body."""
        config = self.config
        if config is None:
            return None  # no configuration: a router run without a control plane behaves as before
        token = bearer(scope)
        client = (scope.get("client") or ("unknown", 0))[0]
        if token is None:
            if not config.required:
                return None
            return await self._deny(
                Denial(401, "MissingAuthenticationTokenException", "UNAUTHORIZED", _NO_TOKEN, "unauthenticated"),
                None,
                endpoint,
                client,
                "no token",
            )
        caller = self._cached(token)
        if caller is None:
            service = self._service
            if service is None:
                return Denial(401, "UnrecognizedClientException", "UNAUTHORIZED", _NO_VERIFIER, "unauthenticated")
            try:
                caller = await asyncio.to_thread(service.authenticate, token)
            except Exception:  # the database is away (locked, restarting): not the caller's fault, retry
                log.exception("checking a token against the metadata store failed")
                msg = "The router cannot check API tokens right now (metadata store unavailable); retry."
                return Denial(503, "ServiceUnavailable", "SERVICE_UNAVAILABLE", msg, "auth_unavailable", 1.0)
            if caller is None:
                wait = self.limiter.record_failure(client)
                if wait is not None:
                    msg = f"Too many failed authentication attempts from {client}; retry in {wait:.0f} s."
                    return Denial(429, "ThrottlingException", "THROTTLED", msg, "throttled", wait)
                denial = Denial(401, "UnrecognizedClientException", "UNAUTHORIZED", _BAD_TOKEN, "unauthenticated")
                return await self._deny(denial, None, endpoint, client, "invalid, expired or revoked token")
            self._remember(token, caller)
        try:
            project = await self._endpoint_project(endpoint)
        except Exception:
            log.exception("reading the project of endpoint %s failed", endpoint)
            msg = "The router cannot check permissions right now (metadata store unavailable); retry."
            return Denial(503, "ServiceUnavailable", "SERVICE_UNAVAILABLE", msg, "auth_unavailable", 1.0)
        if not caller.may(ACTION, endpoint, project):
            msg = (
                f"'{caller.principal}' is not allowed to {ACTION} on '{endpoint}' in project '{project}'; ask an "
                "admin for the invoker role on that project (see docs/security.md)."
            )
            denial = Denial(403, "AccessDeniedException", "ACCESS_DENIED", msg, "forbidden")
            return await self._deny(denial, caller.principal, endpoint, client, "no role", project)
        return None

    async def _endpoint_project(self, endpoint: str) -> str:
        """The project of the endpoint being invoked (``default`` for an endpoint the store does not know:
        the router answers 404 for it anyway, and no binding on another project then matches)."""
        hit = self._projects.get(endpoint)
        if hit is not None and hit[0] >= time.monotonic():
            return hit[1]
        db = self._db
        if db is None:
            return DEFAULT_PROJECT

        def read() -> str:
            try:
                return str(db.get(ENDPOINT_KIND, endpoint).project)
            except NotFound:
                return DEFAULT_PROJECT

        project = await asyncio.to_thread(read)
        self._projects[endpoint] = (time.monotonic() + CACHE_TTL_S, project)
        self._projects.move_to_end(endpoint)
        while len(self._projects) > MAX_CACHED:
            self._projects.popitem(last=False)
        return project

    def _cached(self, token: str) -> Caller | None:
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._cache[key]
            return None
        return hit[1]

    def _remember(self, token: str, caller: Caller) -> None:
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        self._cache[key] = (time.monotonic() + CACHE_TTL_S, caller)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    async def _deny(
        self,
        denial: Denial,
        principal: str | None,
        endpoint: str,
        client: str,
        reason: str,
        project: str = DEFAULT_PROJECT,
    ) -> Denial:
        service = self._service
        if service is not None:

            def write() -> None:
                service.audit(
                    principal=principal,
                    action=ACTION,
                    resource=endpoint,
                    outcome="Denied",
                    status=denial.status,
                    source_ip=client,
                    method="POST",
                    path=f"/endpoints/{endpoint}/invocations",
                    reason=reason,
                    project=project,
                )

            await asyncio.to_thread(write)  # recorded before the answer, as on the control plane
        return denial
