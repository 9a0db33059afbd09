"""Run the control plane: bind, record where we listen, serve, shut down cleanly.

One server per ``KAMADO_HOME`` (a lock file): two servers reconciling the same SQLite store would be
two writers and could start a job twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import uvicorn

from kamado.api.app import create_app
from kamado.api.auth import required_for
from kamado.api.preflight import require_reachable
from kamado.core.errors import ResourceInUse
from kamado.core.settings import Settings

log = logging.getLogger("kamado.server")


def _acquire_home_lock(home: Path) -> Any:
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / "server.lock", "w")  # noqa: SIM115 - held for the server's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        info = (home / "server.json").read_text() if (home / "server.json").exists() else "{}"
        raise ResourceInUse(
            f"A kamado server already runs for {home} ({info.strip()}); use it (KAMADO_URL) or stop it first."
        ) from None
    return lock


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    settings: Settings,
    *,
    idle_shutdown_s: float | None = None,
    log_level: str = "info",
    insecure_remote: bool = False,
) -> None:
    # Off loopback, auth "auto" requires a token on every route but /healthz; "off" is refused there.
    require_token = required_for(settings)
    require_reachable(settings)  # an unreachable database or bucket: one clear paragraph, not a traceback
    if insecure_remote:
        log.warning("--insecure-remote has no effect any more: API tokens protect non-loopback servers")
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The hosting loop talks to the router and pings model servers several times a second: httpx's
    # per-request INFO lines would drown the server log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    lock = _acquire_home_lock(settings.home)
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets: no Nagle stalls
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    # Listen now: server.json is written before uvicorn starts accepting, and a client that read it must
    # find connections queued in the backlog, not refused.
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    display_host = f"[{host}]" if ":" in host else host
    url = f"http://{display_host}:{port}"
    info_file = settings.home / "server.json"

    def forget_info() -> None:
        # Runs in the lifespan's shutdown, before uvicorn re-raises the signal that stopped it.
        with contextlib.suppress(OSError, ValueError):
            if json.loads(info_file.read_text()).get("pid") == os.getpid():
                info_file.unlink()

    app = create_app(settings, on_shutdown=forget_info)
    try:
        app.state.platform.claim_controller()  # fail here, with a clear message, rather than in the lifespan
    except ResourceInUse:
        app.state.platform.store.close()
        sock.close()
        lock.close()
        raise
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)

    async def main() -> None:
        watcher = None
        if idle_shutdown_s:
            watcher = asyncio.create_task(_idle_watch(server, app, idle_shutdown_s))
        _write_info(info_file, url)
        log.info("kamado server %s listening on %s (home %s)", app.version, url, settings.home)
        token_file = app.state.security.token_file
        if require_token:
            log.info("API tokens are required; the admin token is in %s (mode 0600)", token_file)
        else:
            log.info("loopback: requests without a token act as the local admin (token file %s)", token_file)
        try:
            await server.serve(sockets=[sock])
        finally:
            if watcher:
                watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        forget_info()
        lock.close()


def _write_info(path: Path, url: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time()}))
    os.replace(tmp, path)


async def _idle_watch(server: uvicorn.Server, app: Any, idle_s: float) -> None:
    """Stop an auto-started server once nobody has called it for ``idle_s`` and no job is running."""
    platform = app.state.platform
    while not server.should_exit:
        await asyncio.sleep(min(5.0, idle_s / 4))
        quiet = time.monotonic() - app.state.last_request
        if quiet > idle_s and await asyncio.to_thread(platform.idle):
            log.info("no requests for %.0f s and no running jobs: shutting down", quiet)
            server.should_exit = True
