"""Request body limits enforced while streaming (A5): a lying Content-Length or a chunked body cannot
make the server buffer more than the limit."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kamado.core.errors import PayloadTooLarge

PROBLEM = b"application/problem+json"


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        upload_limit: int,
        upload_prefixes: tuple[str, ...],
        path_limits: tuple[tuple[re.Pattern[str], int], ...] = (),
    ) -> None:
        self.app = app
        #: Paths with a limit of their own (function invocations: Lambda's 6 MB), checked first.
        self.path_limits = path_limits
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.upload_limit if path.startswith(self.upload_prefixes) else self.default_limit
        limit = next((n for pattern, n in self.path_limits if pattern.match(path)), limit)
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(send, limit)
                return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    raise _TooLarge()
            return message

        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                # The framework turned the cut-off body into its own error (FastAPI answers 400 for a body it
                # could not read); the client must hear why: 413. The app's answer is swallowed.
                if not response_started:
                    response_started = True
                    await self._reject(send, limit)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(send, limit)
        except Exception:
            if rejected and not response_started:
                await self._reject(send, limit)
            else:
                raise

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        err = PayloadTooLarge(
            f"The request body is larger than the limit of {limit} bytes; send less data "
            "per request (upload large files as source or data directories)."
        )
        body = json.dumps(err.to_problem()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
