"""A plain script with no server and no settings gets a local server started for it, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = "import kamado; c = kamado.Client(); print(c.url); print(c.info()['executor'])"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    env["KAMADO_HOME"] = str(home)
    return env


def test_sdk_starts_one_background_server_and_reuses_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = subprocess.run([sys.executable, "-c", SCRIPT], env=_env(home), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    url, executor = first.stdout.split()
    assert url.startswith("http://127.0.0.1:") and executor == "local"
    info = json.loads((home / "server.json").read_text())
    try:
        assert info["url"] == url
        second = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=_env(home), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 0 and second.stdout.split()[0] == url, "the running server is reused"
        assert json.loads((home / "server.json").read_text())["pid"] == info["pid"]
        # A second server on the same home is refused with a clear message (one writer per store).
        other = subprocess.run(
            [sys.executable, "-m", "kamado", "server", "--port", "0"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 2 and "already runs" in other.stderr
    finally:
        os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while (home / "server.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (home / "server.json").exists(), "a clean shutdown removes server.json"


def test_kamado_url_that_is_unreachable_is_an_error_not_a_new_server(tmp_path: Path) -> None:
    env = {**_env(tmp_path / "h"), "KAMADO_URL": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Cannot reach the kamado server at http://127.0.0.1:9" in proc.stderr
    assert not (tmp_path / "h" / "server.json").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [("--port=-5", "--port"), ("--host=0.0.0.0 --auth=off", "auth=off is refused on 0.0.0.0")],
)
def test_server_rejects_bad_options(tmp_path: Path, bad: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kamado", "server", *bad.split()],
        env=_env(tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr.replace("\n", " ")
    assert not (tmp_path / "h" / "server.json").exists()


def test_second_server_on_the_same_database_is_refused(live: object, tmp_path: Path) -> None:
    """Two homes sharing one metadata store would each take the other's jobs for lost: refused."""
    db = live.home / "kamado.db"  # type: ignore[attr-defined]
    env = {**_env(tmp_path / "other-home"), "KAMADO_DATABASE_URL": f"sqlite:///{db}"}
    proc = subprocess.run(
        [sys.executable, "-m", "kamado", "server", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Another kamado server" in proc.stderr.replace("\n", " ")
    assert not (tmp_path / "other-home" / "server.json").exists()
