"""CORS for the router's invoke path, so the web console (served by the control plane, another origin) can
send a test request to an endpoint and read the answer.

Why only named origins and never ``*``: an invocation may carry a Bearer token and returns a model's output;
any web page a user happens to have open must not be able to call a model through the user's browser and
read the result. The origins allowed are the control plane's own: the ``url`` in ``HOME/server.json`` (the
file the control plane writes when it listens; for a loopback address also the same port on ``localhost``,
``127.0.0.1`` and ``[::1]``, which all reach it), plus any listed in ``KAMADO_CONSOLE_ORIGINS``
(comma-separated, for a console reached through another name, e.g. a server bound to ``0.0.0.0``). The
router re-reads ``server.json`` when it changes, so a control plane restarted on another port is allowed at
once, without restarting the router.

Only ``POST /endpoints/{name}/invocations`` and its preflight get CORS headers; the admin routes and the
metrics never do. A request without an ``Origin`` header (the SDK, curl, boto3) passes through untouched, at
the cost of one header scan.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The router's own ASGI shapes (it imports no web framework).
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ORIGINS_ENV = "KAMADO_CONSOLE_ORIGINS"
ALLOW_HEADERS = (
    b"Authorization, Content-Type, Accept, X-Amzn-SageMaker-Target-Variant, X-Amzn-SageMaker-Custom-Attributes"
)
EXPOSE_HEADERS = b"X-Amzn-Invoked-Production-Variant, X-Amzn-SageMaker-Custom-Attributes"
#: How long a browser may reuse a preflight answer (s); short, so a narrowed origin list takes effect soon.
MAX_AGE = b"600"
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_PREFIX, _SUFFIX = "/endpoints/", "/invocations"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` as a browser writes it in ``Origin`` (default ports left out), or None."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        return None
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _with_loopback_aliases(origin: str) -> set[str]:
    """A loopback origin is reachable under three names; a browser sends whichever the user typed."""
    parts = urlsplit(origin)
    if parts.hostname not in _LOOPBACK_HOSTS:
        return {origin}
    suffix = f":{parts.port}" if parts.port else ""
    return {f"{parts.scheme}://{alias}{suffix}" for alias in _LOOPBACK}


class ConsoleOrigins:
    """The origins allowed to call the invoke path from a browser (see the module docstring)."""

    def __init__(self, server_info: Path, extra: Iterable[str] = ()) -> None:
        self.server_info = server_info
        self.extra = frozenset(o for o in (origin_of(e) for e in extra if e.strip()) if o)
        self._seen: tuple[int, int, int] | None = None
        self._from_server: frozenset[str] = frozenset()

    @classmethod
    def for_home(cls, home: Path, environ: dict[str, str] | None = None) -> ConsoleOrigins:
        env = os.environ if environ is None else environ
        return cls(Path(home) / "server.json", env.get(ORIGINS_ENV, "").split(","))

    def current(self) -> frozenset[str]:
        """Re-reads ``server.json`` only when its inode, size or mtime changed: one ``stat`` per call."""
        try:
            st = self.server_info.stat()
        except OSError:
            self._seen, self._from_server = None, frozenset()
            return self.extra
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key != self._seen:
            allowed: set[str] = set()
            with contextlib.suppress(OSError, ValueError, AttributeError):
                origin = origin_of(str(json.loads(self.server_info.read_text()).get("url", "")))
                if origin:
                    allowed = _with_loopback_aliases(origin)
            self._seen, self._from_server = key, frozenset(allowed)
        return self._from_server | self.extra

    def allows(self, origin: str) -> bool:
        return origin in self.current()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class InvocationCors:
    """ASGI middleware in front of the router: answers preflights for the invoke path itself and adds the
    CORS response headers to invocations from an allowed origin. Everything else passes through."""

    def __init__(self, app: ASGIApp, origins: ConsoleOrigins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        origin = _header(scope, b"origin") if path.startswith(_PREFIX) and path.endswith(_SUFFIX) else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self.origins.allows(origin.decode("latin-1"))
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await _preflight(send, origin if allowed else None)
            return
        if not allowed:  # no CORS headers: the browser keeps the answer from the page
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send, origin: bytes | None) -> None:
    """204 with the allowance for an allowed origin; 403 without any CORS header for any other."""
    if origin is None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
    else:
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", b"POST"),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
