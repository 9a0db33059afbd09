"""A synchronous httpx transport that calls an ASGI app in process, lifespan included.

Lets ``kamado.Client(transport=InProcessTransport(app))`` exercise the whole SDK and API without a socket
(CONVENTIONS 13). The app runs on its own event-loop thread, as it would under uvicorn.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import httpx


class InProcessTransport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._asgi = httpx.ASGITransport(app=app)
        self._lifespan: AbstractContextManager[Any] = self._portal.wrap_async_context_manager(
            app.router.lifespan_context(app)
        )
        self._lifespan.__enter__()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        buffered = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = self._portal.call(self._asgi.handle_async_request, buffered)
        content = self._portal.call(response.aread)
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    def close(self) -> None:
        """Run the app's shutdown and stop its loop. Idempotent (httpx.Client.close() calls it too)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
