"""DNS rebinding: a loopback server, where no token means the local admin, answers only to loopback names."""

from __future__ import annotations

import httpx
import pytest

from kamado.api.hosts import LOOPBACK_NAMES, allowed_hosts, host_name
from tests.live_server import LiveServer


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LOCALHOST", "localhost"),
        ("[::1]:8765", "::1"),
        ("::1", "::1"),
        ("evil.example:80", "evil.example"),
        ("", ""),
    ],
)
def test_host_name_strips_port_and_brackets(header: str, name: str) -> None:
    assert host_name(header) == name


def test_defaults_follow_whether_tokens_are_required() -> None:
    assert allowed_hosts("", tokens_required=False) == LOOPBACK_NAMES
    assert allowed_hosts("", tokens_required=True) is None, "off loopback a token is needed anyway"
    assert allowed_hosts("kamado.corp:443, Proxy", tokens_required=True) == LOOPBACK_NAMES | {"kamado.corp", "proxy"}
    assert allowed_hosts("*", tokens_required=False) is None


def test_rebound_name_reaches_nothing_on_a_loopback_server(live: LiveServer) -> None:
    job = {"TrainingJobName": "rebound", "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]}}
    r = httpx.post(f"{live.url}/api/v1/training-jobs", json=job, headers={"Host": "attacker.example"})
    assert r.status_code == 400 and r.json()["details"] == [{"field": "Host", "message": "not an allowed host name"}]
    assert "KAMADO_ALLOWED_HOSTS" in r.json()["message"]
    assert httpx.get(f"{live.url}/", headers={"Host": "attacker.example"}).status_code == 400, "the console too"
    port = live.url.rsplit(":", 1)[1]
    ok = httpx.get(f"{live.url}/api/v1/training-jobs", headers={"Host": f"localhost:{port}"})
    assert ok.status_code == 200 and ok.json()["TrainingJobSummaries"] == [], "nothing was created"
