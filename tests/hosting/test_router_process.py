"""The router as a process: started detached by ensure_router, reused while alive, replaced when dead, serving
the last table after a restart, and draining on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from kamado.core.invocation import CUSTOM_ATTRIBUTES_HEADER
from kamado.hosting.router_process import (
    EXIT_ALREADY_RUNNING,
    RouterClient,
    RouterHandle,
    ensure_router,
    pid_alive,
)
from tests.hosting.test_router_support import (  # noqa: F401  (the *_fixture names register fixtures)
    Worker,
    capture,
    echo_fixture,
    endpoint,
    table,
    variant,
    wait_until,
)


def test_ensure_router_reuses_a_live_router_and_replaces_a_dead_one_with_the_same_table(
    tmp_path: Path, echo: Worker
) -> None:
    home = tmp_path / "home"
    first = ensure_router(home)
    try:
        assert (home / "hosting" / "router.token").stat().st_mode & 0o777 == 0o600
        info = json.loads((home / "hosting" / "router.json").read_text())
        assert (
            info["pid"] == first.pid and info["url"] == first.url and info["port"] == int(first.url.rsplit(":", 1)[1])
        )
        published = table(endpoint("ep-restart", variant("A", echo)))
        with RouterClient(first) as admin:
            admin.publish(published)
        assert ensure_router(home) == first  # alive and answering: reused
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(first.pid))
        assert json.loads((home / "hosting" / "router.json").read_text())["pid"] == first.pid  # stale record
        second = ensure_router(home)
        assert second.pid != first.pid and second.token == first.token
        # The new router serves the last table from routes.json without the control plane publishing again.
        assert httpx.get(f"{second.url}/ping").json()["version"] == published.version
        r = httpx.post(f"{second.url}/endpoints/ep-restart/invocations", content=b"back")
        assert r.status_code == 200 and r.content == b"back"
    finally:
        RouterClient(ensure_router(home)).stop(timeout_s=15)
    assert not (home / "hosting" / "router.json").exists()


def _start_attached(home: Path) -> tuple[subprocess.Popen[bytes], RouterHandle]:
    proc = subprocess.Popen([sys.executable, "-m", "kamado.hosting.router_process", "--home", str(home)])

    def ready() -> RouterHandle | None:
        try:
            info = json.loads((home / "hosting" / "router.json").read_text())
        except (OSError, ValueError):
            return None
        if info["pid"] != proc.pid:
            return None
        return RouterHandle(info["url"], (home / "hosting" / "router.token").read_text(), proc.pid)

    return proc, wait_until(ready, timeout=20)


def test_sigterm_finishes_in_flight_requests_flushes_capture_and_exits_0(tmp_path: Path, echo: Worker) -> None:
    home = tmp_path / "home"
    proc, handle = _start_attached(home)
    try:
        admin = RouterClient(handle)
        admin.publish(table(endpoint("ep-drain", variant("A", echo, capture=capture("cap", 100)))))
        box: dict[str, Any] = {}

        def slow() -> None:
            box["r"] = httpx.post(
                f"{handle.url}/endpoints/ep-drain/invocations",
                content=b"late",
                headers={CUSTOM_ATTRIBUTES_HEADER: "sleep_ms=700", "Content-Type": "text/csv"},
                timeout=30,
            )

        thread = threading.Thread(target=slow)
        thread.start()
        wait_until(lambda: admin.stats(10)["endpoints"]["ep-drain"]["variants"]["A"]["in_flight"] == 1)
        admin.close()
        proc.send_signal(signal.SIGTERM)
        thread.join(20)
        assert box["r"].status_code == 200 and box["r"].content == b"late"
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    captured = list((home / "artifacts" / "cap" / "ep-drain" / "A").rglob("*.jsonl"))
    assert len(captured) == 1 and json.loads(captured[0].read_text())["captureData"]["endpointOutput"]["data"] == "late"
    assert not (home / "hosting" / "router.json").exists()


def test_a_second_router_for_the_same_home_refuses_to_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    handle = ensure_router(home)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "kamado.hosting.router_process", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == EXIT_ALREADY_RUNNING and "another router" in second.stderr
        assert json.loads((home / "hosting" / "router.json").read_text())["pid"] == handle.pid
    finally:
        RouterClient(handle).stop(timeout_s=15)
