"""A real kamado server on loopback (uvicorn in a thread) over a temporary KAMADO_HOME."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from kamado.api.app import create_app
from kamado.core.settings import Settings
from kamado.sdk.client import Client
from kamado.testing.hosting import stop_hosting_processes


@dataclass
class LiveServer:
    url: str
    home: Path
    client: Client
    app: Any

    def wait(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.client.wait_for_training_job(name, poll_s=0.05, timeout_s=timeout)


def start_server(home: Path, **overrides: Any) -> tuple[uvicorn.Server, threading.Thread, str, Any]:
    settings = Settings.from_env(
        home=home,
        database_url=f"sqlite:///{home / 'kamado.db'}",
        artifacts_url=str(home / "artifacts"),
        reconcile_interval_s=0.05,
        stop_grace_s=2.0,
        **overrides,
    )
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "server did not start"
    return server, thread, f"http://127.0.0.1:{port}", app


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    overrides = getattr(request, "param", {}) or {}
    home = tmp_path / "home"
    server, thread, url, app = start_server(home, **overrides)
    client = Client(url)
    try:
        yield LiveServer(url=url, home=home, client=client, app=app)
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)  # endpoints outlive the control plane: stop their processes too


def write_script(directory: Path, body: str, name: str = "train.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(body)
    return directory


def task_visible_dir(prefix: str = "kamado-task-dir-") -> Path:
    """A directory both the test and its tasks can write (markers, flags). Not under ``tmp_path``: pytest makes
    that private to the test's user, and a root server's tasks run as an unprivileged worker user that cannot
    reach it (see kamado/compute/worker_user.py). Not under ``/tmp`` either: such a task has a ``/tmp`` of its
    own; ``/var/tmp`` stays shared. Removed when the test process exits."""
    import atexit
    import os
    import shutil
    import tempfile

    shared = "/var/tmp" if os.path.isdir("/var/tmp") else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=shared))
    path.chmod(0o777)  # not sticky: tasks of different uids may append to one file (fs.protected_regular)
    atexit.register(shutil.rmtree, path, True)
    return path
