"""Refuse requests whose ``Host`` header names a host this server does not answer to (DNS rebinding).

On loopback a request without a token acts as the local admin, which is what makes a laptop need no
setup - and what a web page could abuse: it points its own domain at 127.0.0.1 (DNS rebinding), and the
browser then treats kamado as that page's own origin. The browser still sends the page's domain as
``Host``, so answering only to the names this server is reached by closes the hole.

Default: enforced only where a token is not needed (the loopback admin), allowing ``127.0.0.1``,
``localhost`` and ``::1`` on any port. Off loopback every request needs a token anyway, so a foreign
``Host`` gains nothing; set ``KAMADO_ALLOWED_HOSTS`` (comma-separated; ``*`` allows any) to enforce it
there too, e.g. the name of a reverse proxy.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from kamado.core.errors import InvalidSpec

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
PROBLEM = b"application/problem+json"


def host_name(header: str) -> str:
    """``Host`` without its port, lower-cased; IPv6 brackets removed."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_hosts(configured: str | None, *, tokens_required: bool) -> frozenset[str] | None:
    """The names to answer to, or None for any."""
    if configured:
        names = {host_name(n) for n in configured.split(",") if n.strip()}
        return None if "*" in names else frozenset(names | LOOPBACK_NAMES)
    return None if tokens_required else LOOPBACK_NAMES


class HostAllowlistMiddleware:
    def __init__(self, app: ASGIApp, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k == b"host"), b"")
        name = host_name(raw.decode("latin-1"))
        if name in self.allowed:
            await self.app(scope, receive, send)
            return
        shown = name[:100].encode("ascii", "backslashreplace").decode()
        err = InvalidSpec(
            f"This server does not answer to Host {shown!r}; reach it as 127.0.0.1 or localhost, or allow the "
            "name with KAMADO_ALLOWED_HOSTS (comma-separated) when it is behind a proxy.",
            details=[{"field": "Host", "message": "not an allowed host name"}],
        )
        body = json.dumps(err.to_problem()).encode()
        headers = [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
