"""The router as its own process, and the control plane's handle on it.

    python -m kamado.hosting.router_process --home HOME [--host 127.0.0.1] [--port 0] [--artifacts DIR]

The router is a separate, detached process (its own session, nobody's child once started through
:func:`ensure_router`) so that the control plane can restart, crash or be upgraded without dropping a request.
Everything it needs to come back on its own lies under ``HOME/hosting``:

* ``router.json`` ``{pid, url, port, started_at}``, written atomically once the socket is listening (so a reader
  that finds it can connect), removed on a clean exit;
* ``router.token``, 0600, the shared secret for the admin routes, created by the first router and kept;
* ``routes.json``, the last routing table accepted, reloaded at start;
* ``router.log``, its stderr; ``router.lock``, held for its lifetime (one router per home).

SIGTERM stops accepting connections, lets in-flight requests finish, flushes captured data and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from kamado.core.errors import ConcurrentModification, InvalidSpec, KamadoError
from kamado.hosting.router_auth import CONFIG_FILE as AUTH_CONFIG_FILE
from kamado.hosting.router_auth import RouterAuthConfig
from kamado.hosting.router_auth import write_config as write_auth_config
from kamado.hosting.routing import ADMIN_TOKEN_HEADER, RoutingTable

log = logging.getLogger("kamado.router")

INFO_FILE, TOKEN_FILE, ROUTES_FILE = "router.json", "router.token", "routes.json"
LOG_FILE, LOCK_FILE, START_LOCK_FILE = "router.log", "router.lock", "router.start.lock"
#: SageMaker allows a model 60 s; in-flight requests get that long (plus a little) to finish on SIGTERM.
GRACEFUL_SHUTDOWN_S = 65
EXIT_ALREADY_RUNNING = 3


def hosting_dir(home: Path) -> Path:
    return Path(home).expanduser().resolve() / "hosting"


# -------------------------------------------------------------------------------------------- the process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kamado.hosting.router_process", description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=0, type=int, help="0 picks a free port")
    parser.add_argument("--artifacts", type=Path, help="artifact store root for data capture (default HOME/artifacts)")
    parser.add_argument("--detach", action="store_true", help="fork; print the router's pid and return at once")
    args = parser.parse_args(argv)
    hosting = hosting_dir(args.home)
    hosting.mkdir(parents=True, exist_ok=True)
    if args.detach:
        _detach(hosting / LOG_FILE)  # returns only in the detached router
    artifacts = args.artifacts or hosting.parent / "artifacts"
    return serve(hosting, args.host, args.port, Path(artifacts).expanduser().resolve())


def _detach(log_path: Path) -> None:
    """Fork once more: the launcher prints the router's pid and exits, so the router is reparented and nobody
    has to reap it (a control plane that outlives it would otherwise keep a zombie that looks alive)."""
    pid = os.fork()  # safe: nothing but argparse has run, no threads exist yet
    if pid:
        print(pid, flush=True)
        os._exit(0)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(devnull)


def serve(hosting: Path, host: str, port: int, artifacts: Path) -> int:
    import uvicorn

    from kamado.hosting.cors import ConsoleOrigins, InvocationCors
    from kamado.hosting.router import Router
    from kamado.hosting.router_auth import CONFIG_FILE as AUTH_FILE
    from kamado.hosting.router_auth import RouterAuth

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = _hold_lock(hosting / LOCK_FILE)
    if lock is None:
        log.error("another router already serves %s (%s); not starting a second one", hosting, _read_info(hosting))
        return EXIT_ALREADY_RUNNING
    token = ensure_token(hosting / TOKEN_FILE)
    router = Router(
        token=token,
        artifacts_root=artifacts,
        routes_path=hosting / ROUTES_FILE,
        table=_load_table(hosting / ROUTES_FILE),
        auth=RouterAuth(hosting / AUTH_FILE),
    )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
    config = uvicorn.Config(
        InvocationCors(router, ConsoleOrigins.for_home(hosting.parent)),  # the console's test-invoke box
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        proxy_headers=False,  # nothing proxies to the router, and the middleware costs on every request
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    # Before uvicorn takes the signals over, a SIGTERM still asks it to stop; once it has drained, uvicorn
    # re-raises the signal that stopped it, which this handler absorbs, so the process exits 0 instead of dying.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))

    async def run() -> None:
        watcher = asyncio.get_running_loop().create_task(_watch(server, router, hosting / INFO_FILE, url, bound_port))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run())
    finally:
        _forget_info(hosting / INFO_FILE)
        lock.close()
    return 0


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _watch(server: Any, router: Any, info_path: Path, url: str, port: int) -> None:
    """Publish router.json once uvicorn listens; when it starts shutting down, release held requests."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.01)
    info = {"pid": os.getpid(), "url": url, "port": port, "started_at": time.time()}
    _write_json_atomic(info_path, info)
    while not server.should_exit:
        await asyncio.sleep(0.05)
    router.begin_drain()


def _hold_lock(path: Path) -> IO[str] | None:
    lock = open(path, "a")  # noqa: SIM115 - held for the process's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def ensure_token(path: Path) -> str:
    """The admin token: created once (0600, exclusive create, so two racing routers agree) and then reused."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _load_table(path: Path) -> RoutingTable | None:
    try:
        return RoutingTable.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        log.warning("ignoring unreadable routing table %s: %s", path, exc)
        return None


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_info(hosting: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((hosting / INFO_FILE).read_text())
        if isinstance(info, dict):
            return info
    return None


def _forget_info(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


# ------------------------------------------------------------------------------------- the control plane's side


@dataclass(frozen=True)
class RouterHandle:
    url: str
    token: str
    pid: int


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie still answers ``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _answers_ping(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def find_router(home: Path) -> RouterHandle | None:
    """The router recorded for ``home`` if it is alive and answers ``/ping``."""
    hosting = hosting_dir(home)
    info = _read_info(hosting)
    if not info or not isinstance(info.get("pid"), int) or not isinstance(info.get("url"), str):
        return None
    if not pid_alive(info["pid"]) or not _answers_ping(info["url"]):
        return None
    return RouterHandle(info["url"], (hosting / TOKEN_FILE).read_text().strip(), info["pid"])


@contextlib.contextmanager
def _start_lock(hosting: Path) -> Iterator[None]:
    """Serialises ensure_router between control planes, so two of them never start two routers."""
    with open(hosting / START_LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_router(
    home: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    artifacts: Path | None = None,
    timeout_s: float = 30.0,
    auth: RouterAuthConfig | None = None,
) -> RouterHandle:
    """Reuse the live router of ``home`` or start one detached, and return once it answers ``/ping``.

    ``auth`` (who may invoke) is written to the router's configuration first; a live router that does not
    adopt it within :data:`AUTH_ADOPT_S` (an older router) is stopped and a new one started."""
    hosting = hosting_dir(home)
    hosting.mkdir(parents=True, exist_ok=True)
    with _start_lock(hosting):
        if auth is not None:
            write_auth_config(hosting / AUTH_CONFIG_FILE, auth)
        live = find_router(home)
        if live is not None and (auth is None or _adopts(live.url, auth.mode)):
            return live
        if live is not None:
            log.warning("the router (pid %s) did not take up invocation auth %r; restarting it", live.pid, auth)
            RouterClient(live).stop(timeout_s=timeout_s)
        cmd = [sys.executable, "-m", "kamado.hosting.router_process", "--home", str(hosting.parent)]
        cmd += ["--host", host, "--port", str(port), "--detach"]
        if artifacts is not None:
            cmd += ["--artifacts", str(artifacts)]
        launched = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s, start_new_session=True
        )
        if launched.returncode != 0 or not launched.stdout.strip().isdigit():
            raise KamadoError(f"Could not start the router: {launched.stderr.strip()[-2000:] or launched.stdout}")
        return _wait_ready(hosting, int(launched.stdout.strip()), timeout_s)


#: How long a live router may take to re-read its auth configuration (it looks every second).
AUTH_ADOPT_S = 5.0


def _adopts(url: str, mode: str) -> bool:
    deadline = time.monotonic() + AUTH_ADOPT_S
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=2.0).json().get("auth") == mode:
                return True
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _wait_ready(hosting: Path, pid: int, timeout_s: float) -> RouterHandle:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise KamadoError(
                f"The router (pid {pid}) exited at start; see {hosting / LOG_FILE}:\n{_log_tail(hosting)}"
            )
        info = _read_info(hosting)
        if info and info.get("pid") == pid and _answers_ping(info["url"]):
            return RouterHandle(info["url"], (hosting / TOKEN_FILE).read_text().strip(), pid)
        time.sleep(0.02)
    raise KamadoError(f"The router (pid {pid}) did not answer within {timeout_s:g} s; see {hosting / LOG_FILE}.")


def _log_tail(hosting: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join((hosting / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    return ""


class RouterClient:
    """The control plane's synchronous client for the router's admin routes."""

    def __init__(self, handle: RouterHandle, *, timeout_s: float = 10.0) -> None:
        self.handle = handle
        self._http = httpx.Client(base_url=handle.url, headers={ADMIN_TOKEN_HEADER: handle.token}, timeout=timeout_s)

    def publish(self, table: RoutingTable) -> None:
        """Make ``table`` the router's table. A table older than the router's raises ConcurrentModification."""
        response = self._http.put(
            "/_kamado/routes", content=table.model_dump_json(), headers={"content-type": "application/json"}
        )
        if response.status_code == 409:
            body = response.json()
            raise ConcurrentModification(body["Message"], details={"version": body.get("version")})
        if response.status_code == 400:
            raise InvalidSpec(f"The router refused the routing table: {response.json().get('Message')}")
        response.raise_for_status()

    def stats(self, window_s: float = 60.0) -> dict[str, Any]:
        response = self._http.get("/_kamado/stats", params={"window": window_s})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self, timeout_s: float = 70.0) -> None:
        """SIGTERM the router and wait for it to drain and exit (SIGKILL after ``timeout_s``)."""
        self.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.handle.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(self.handle.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.handle.pid, signal.SIGKILL)
                break
            time.sleep(0.02)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
