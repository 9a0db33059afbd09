"""The model-server worker: one process per endpoint instance, speaking SageMaker's serving-container contract
(``GET /ping``, ``POST /invocations``) for kamado's router.

    python -m kamado.hosting.model_server --model-dir DIR --port PORT [--host 127.0.0.1]

One kamado instance is one process: ``SAGEMAKER_MODEL_SERVER_WORKERS`` is ignored and an endpoint scales by
instance count, so a crash, a leak or a slow model stays confined to one instance the router can route around.

The model is loaded before the socket is bound, so a listening socket means ready; a failing ``model_fn``
exits 1. Most of kamado's overhead over a bare ``predict`` is this hop, so it is a raw ASGI app under uvicorn
with httptools and uvloop, and predict runs on the event-loop thread: a short CPU-bound predict costs less
than a hop to a thread, and ``/ping`` may wait behind one. SIGTERM drains in-flight requests and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from kamado.core.invocation import MAX_INVOCATION_BYTES
from kamado.hosting.handlers import InferenceCodeError, InferenceHandlers, InvocationError, load_handlers

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # SageMaker's serving port, for when neither --port nor SAGEMAKER_BIND_TO_PORT is given
GRACEFUL_SHUTDOWN_S = 30  # SageMaker sends SIGKILL 30 s after SIGTERM
MAX_ERROR_BYTES = 1024
TEXT = b"text/plain; charset=utf-8"


class ModelServerApp:
    """The ASGI app. ``lifespan="off"``, so it only ever sees HTTP scopes."""

    def __init__(self, handlers: InferenceHandlers, model: Any) -> None:
        self._handlers = handlers
        self._model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await respond(send, 405, b"POST /invocations only.", TEXT, allow=b"POST")
            else:
                await self._invoke(scope, receive, send)
        elif path == "/ping":
            if method not in ("GET", "HEAD"):
                await respond(send, 405, b"GET /ping only.", TEXT, allow=b"GET, HEAD")
            else:
                await respond(send, 200, b"", TEXT)
        else:
            await respond(send, 404, b"Not found; the model server serves GET /ping and POST /invocations.", TEXT)

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = accept = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        body = None if length is not None and int(length) > MAX_INVOCATION_BYTES else await read_body(receive)
        if body is None:
            message = f"The request body exceeds {MAX_INVOCATION_BYTES} bytes, SageMaker's InvokeEndpoint limit."
            await respond(send, 413, message.encode(), TEXT)
            return
        try:
            payload, payload_type = self._handlers.invoke(self._model, body, content_type, accept)
        except InvocationError as exc:
            await respond(send, exc.http_status, exc.message.encode(), TEXT)
        except Exception as exc:
            traceback.print_exc()
            await respond(send, 500, describe(exc), TEXT)
        else:
            await respond(send, 200, payload, payload_type.encode("latin-1"))


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None once it passes the limit (a chunked body declares no length up front)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_INVOCATION_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, content_type: bytes, allow: bytes | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def describe(exc: BaseException) -> bytes:
    """What the caller sees of a failure in user code; the traceback goes to the instance's log instead."""
    return f"{type(exc).__name__}: {exc}".encode()[:MAX_ERROR_BYTES].decode(errors="ignore").encode()


class _Server(uvicorn.Server):
    """Prints the startup line only once the socket is bound, so it is true when it appears."""

    def __init__(self, config: uvicorn.Config, loaded: str) -> None:
        super().__init__(config)
        self._loaded = loaded

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"kamado model server: {self._loaded}; listening on http://{host}:{port}", flush=True)


def serve(app: ModelServerApp, host: str, port: int, loaded: str) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config, loaded)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal to the handler that was in place before it,
    # which by default kills the process. Handing it this one instead makes a drained shutdown exit 0, and a
    # signal that lands before uvicorn installs its own handlers still stops the server.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    server.run()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kamado.hosting.model_server", description=__doc__)
    parser.add_argument("--model-dir", required=True, help="the extracted model artifact")
    parser.add_argument("--port", type=int, help="default: $SAGEMAKER_BIND_TO_PORT, else 8080")
    parser.add_argument("--host", default=DEFAULT_HOST)
    args = parser.parse_args(argv)
    if args.port is None:
        env_port = os.environ.get("SAGEMAKER_BIND_TO_PORT")
        if env_port is not None and not env_port.isdigit():
            parser.error(f"SAGEMAKER_BIND_TO_PORT={env_port!r} is not a port number")
        args.port = int(env_port) if env_port else DEFAULT_PORT
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = os.path.abspath(args.model_dir)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # user prints reach the log promptly
    try:
        handlers = load_handlers(model_dir, os.environ)
    except InferenceCodeError as exc:
        print(f"kamado model server: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print("kamado model server: importing the inference script failed; not serving.", file=sys.stderr)
        return 1
    started = time.perf_counter()
    try:
        model = handlers.load_model(model_dir)
    except Exception:
        traceback.print_exc()
        print("kamado model server: loading the model failed; not serving.", file=sys.stderr)
        return 1
    loaded = f"model loaded from {model_dir} in {time.perf_counter() - started:.2f} s"
    serve(ModelServerApp(handlers, model), args.host, args.port, loaded)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
