"""A stand-in model-server worker for the router tests (no tests here; stdlib only, so it starts fast).

``python tests/hosting/test_router_worker.py --id w1 [--status 200] [--sleep-ms 0]`` serves HTTP/1.1 with
keep-alive on a free port of 127.0.0.1 and prints the port on stdout. ``GET /ping`` answers 200; ``POST
/invocations`` echoes the body and content type. A request can change the behaviour through the custom
attributes the router forwards, e.g. ``X-Amzn-SageMaker-Custom-Attributes: status=503;sleep_ms=200``, or
``die=1`` to exit before answering. The answer's custom attributes name the worker and what it received, so a
test sees which instance answered and what was forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal


def _parse_attributes(raw: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split(";") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


async def _answer(args: argparse.Namespace, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    if path == "/ping":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    if method != "POST" or path != "/invocations":
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    attrs = _parse_attributes(headers.get("x-amzn-sagemaker-custom-attributes", ""))
    if attrs.get("die"):
        os._exit(17)
    await asyncio.sleep(float(attrs.get("sleep_ms", args.sleep_ms)) / 1000.0)
    status = int(attrs.get("status", args.status))
    ctype = headers.get("content-type", "application/octet-stream")
    out = body if 200 <= status < 300 else f"worker {args.id} failed with {status}".encode()
    inference_id = headers.get("x-amzn-sagemaker-inference-id", "")
    answered = f"worker={args.id};accept={headers.get('accept', '')};inference={inference_id}"
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(out)}\r\n"
        f"X-Amzn-SageMaker-Custom-Attributes: {answered}\r\n\r\n"
    )
    return head.encode() + out


async def _serve_connection(
    args: argparse.Namespace, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            writer.write(await _answer(args, method, path, headers, body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _worker_main(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(lambda r, w: _serve_connection(args, r, w), "127.0.0.1", args.port)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    asyncio.run(_worker_main(parser.parse_args()))
