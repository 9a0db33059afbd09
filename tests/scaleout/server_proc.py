"""Start ``kamado server`` as a real subprocess (the way users do) and stop it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    return {**env, "KAMADO_HOME": str(home), **extra}


def run_server(home: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``kamado server`` to completion (for configurations that must refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "kamado", "server", "--port", "0", *args],
        env=server_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def running_server(home: Path, *args: str, **env: str) -> Iterator[str]:
    """A ``kamado server`` subprocess on loopback; yields its URL once /healthz answers."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kamado", "server", "--port", "0", *args],
            env=server_env(home, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = _wait_for_url(home, proc, log)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _wait_for_url(home: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"kamado server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            info = json.loads((home / "server.json").read_text())
            if info.get("pid") == proc.pid and httpx.get(f"{info['url']}/healthz", timeout=2).status_code == 200:
                return str(info["url"])
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"kamado server did not start in time:\n{log.read_text()[-3000:]}")
