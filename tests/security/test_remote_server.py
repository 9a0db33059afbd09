"""A real ``kamado server`` bound off loopback: tokens required, nothing created without one (A8),
brute force answered with 429 while a valid token keeps working (T13), and the SDK/CLI use tokens."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.errors import Forbidden, Unauthorized
from kamado.sdk.client import Client

#: Generous: the machine running the tests may be busy.
T = 30.0
HOST = "127.0.0.2"  # a loopback-range address the server does not treat as loopback ("not 127.0.0.1")
JOB = {
    "TrainingJobName": "should-not-exist",
    "AlgorithmSpecification": {"ContainerEntrypoint": ["python3", "-c", "print(1)"]},
}


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("remote") / "home"
    env = {**os.environ, "KAMADO_HOME": str(home)}
    env.pop("KAMADO_TOKEN", None)
    env.pop("KAMADO_AUTH", None)
    log = open(home.parent / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "kamado", "server", "--host", HOST, "--port", "0"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline and url is None:
            if proc.poll() is not None:
                pytest.fail((home.parent / "server.log").read_text())
            try:
                url = json.loads((home / "server.json").read_text())["url"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert url, "server did not start"
        while time.monotonic() < deadline:  # server.json is written just before the socket listens
            try:
                if httpx.get(f"{url}/healthz", timeout=T).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield {"url": url, "home": home, "env": env, "log": home.parent / "server.log"}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _admin(remote: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {(remote['home'] / 'admin.token').read_text().strip()}"}


def test_unauthenticated_create_is_refused_and_creates_nothing(remote: dict[str, Any]) -> None:
    url = remote["url"]
    assert httpx.get(f"{url}/healthz", timeout=T).status_code == 200
    r = httpx.post(f"{url}/api/v1/training-jobs", json=JOB, timeout=T)
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
    assert "Authorization: Bearer" in r.json()["message"]
    # A10: spoofed identity headers change nothing.
    spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Kamado-User": "local-admin", "X-Forwarded-User": "admin"}
    assert httpx.post(f"{url}/api/v1/training-jobs", json=JOB, headers=spoofed, timeout=T).status_code == 401
    missing = httpx.get(f"{url}/api/v1/training-jobs/should-not-exist", headers=_admin(remote), timeout=T)
    assert missing.status_code == 404
    listed = httpx.get(f"{url}/api/v1/training-jobs", headers=_admin(remote), timeout=T).json()
    assert listed["TrainingJobSummaries"] == []


def test_token_file_is_private_and_never_printed(remote: dict[str, Any]) -> None:
    token_file = remote["home"] / "admin.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    log = remote["log"].read_text()
    assert str(token_file) in log
    assert token_file.read_text().strip() not in log


def test_sdk_and_cli_authenticate_and_are_refused_cleanly(remote: dict[str, Any], tmp_path: Path) -> None:
    url = remote["url"]
    with Client(url, token=(remote["home"] / "admin.token").read_text().strip()) as admin:
        admin.create_principal("viewer-1", role_bindings=[{"Role": "viewer"}])
        viewer_token = admin.create_token(principal="viewer-1", description="test")["Token"]
        assert admin.whoami()["Principal"] == "local-admin"
    with Client(url, token=viewer_token) as viewer:
        assert viewer.list_training_jobs()["TrainingJobSummaries"] == []
        with pytest.raises(Forbidden, match="CreateSecret"):
            viewer.create_secret("x", "y")
    with Client(url, token="kmd_000000000000_" + "B" * 43) as nobody, pytest.raises(Unauthorized):
        nobody.whoami()
    env = {**remote["env"], "KAMADO_URL": url, "KAMADO_TOKEN": viewer_token, "KAMADO_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "kamado", "tokens", "list", "-o", "json"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert [t["Principal"] for t in json.loads(out.stdout)] == ["viewer-1"]  # only its own tokens
    assert viewer_token not in out.stdout
    out = subprocess.run([sys.executable, "-m", "kamado", "audit"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "AccessDenied" in out.stderr


def test_brute_force_gets_429_while_a_valid_token_keeps_working(remote: dict[str, Any]) -> None:
    """Last in this module: afterwards this address is over its failure limit for a minute."""
    url = remote["url"]
    codes = []
    valid_ok = 0
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=T) as c:
        for i in range(200):
            guess = f"kmd_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            codes.append(c.get("/api/v1/training-jobs", headers={"Authorization": f"Bearer {guess}"}).status_code)
            if i % 10 == 0:
                valid_ok += c.get("/api/v1/training-jobs", headers=_admin(remote)).status_code == 200
    assert 200 not in codes, "no guess may succeed"
    first_429 = codes.index(429)
    assert first_429 <= 20, f"429 after {first_429} failures"
    assert set(codes[first_429:]) == {429}
    assert valid_ok == 20, "the legitimate client was never locked out"
    last_guess = {"Authorization": "Bearer kmd_000000000000_" + "A" * 43}
    r = httpx.get(f"{url}/api/v1/training-jobs", headers=last_guess, timeout=T)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert time.monotonic() - started < 60
