"""Find the local kamado server, or start one in the background (as ``ray.init()`` does).

The server records where it listens in ``KAMADO_HOME/server.json``; a file lock makes sure two scripts
starting at once share one server instead of racing to start two.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kamado.core.errors import ServiceUnavailable
from kamado.core.settings import kamado_home

AUTOSTART_IDLE_SHUTDOWN_S = 900
START_TIMEOUT_S = 60.0


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def running_server_url(home: Path | None = None) -> str | None:
    info_file = (home or kamado_home()) / "server.json"
    try:
        info = json.loads(info_file.read_text())
    except (OSError, ValueError):
        return None
    url = info.get("url")
    return url if isinstance(url, str) and _healthy(url) else None


def ensure_local_server(home: Path | None = None) -> str:
    home = home or kamado_home()
    url = running_server_url(home)
    if url:
        return url
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = running_server_url(home)
        if url:
            return url
        log_path = home / "server.log"
        env = {**os.environ, "KAMADO_HOME": str(home)}
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kamado",
                    "server",
                    "--port",
                    "0",
                    "--idle-shutdown",
                    str(AUTOSTART_IDLE_SHUTDOWN_S),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                info = json.loads((home / "server.json").read_text())
                if info.get("pid") == proc.pid and _healthy(info["url"]):
                    return str(info["url"])
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        raise ServiceUnavailable(
            f"Could not start a local kamado server (see {log_path}). Start one with `kamado server` or set "
            f"KAMADO_URL. Last log lines:\n{tail}"
        )
