"""InvokeEndpoint authentication on the router (the data plane).

A real control plane (``auth=required``), its real router process and a real endpoint (one model server
that counts the requests it receives in a file). Denied calls are answered by the router from the headers
alone: the model server's count and the router's invocation figures only ever grow with allowed calls.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.errors import Forbidden, Unauthorized
from kamado.hosting.router_auth import (
    CACHE_TTL_S,
    CONFIG_FILE,
    RouterAuth,
    RouterAuthConfig,
    requires_token,
    write_config,
)
from kamado.sdk.client import Client
from kamado.sdk.predictor import Predictor
from kamado.testing.hosting import stop_hosting_processes
from tests.hosting.endpoint_kit import INFERENCE, ROW, Kit, model_archive
from tests.live_server import start_server, task_visible_dir
from tests.security.helpers import make_principal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

COUNTING = INFERENCE.replace(
    "def predict_fn(data, model):\n",
    "def predict_fn(data, model):\n    open(os.environ['KIT_COUNT_FILE'], 'a').write('x\\n')\n",
)
CONSOLE = "http://console.test"
BAD = "kmd_000000000000_" + "C" * 43


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("router-auth")
    home = tmp / "home"
    old_origins = os.environ.get("KAMADO_CONSOLE_ORIGINS")
    os.environ["KAMADO_CONSOLE_ORIGINS"] = CONSOLE  # inherited by the router the control plane starts
    server, thread, url, _ = start_server(home, auth="required")
    admin = (home / "admin.token").read_text().strip()
    client = Client(url, token=admin)
    try:
        code = tmp / "code"
        code.mkdir()
        (code / "inference.py").write_text(COUNTING)
        kit = Kit(client, client.upload_file(model_archive(tmp / "model")), client.upload_directory(code))
        # Where the model server can write: a root server's tasks run as a worker user that cannot reach tmp.
        count_file = task_visible_dir() / "received.txt"
        count_file.touch(mode=0o666)
        count_file.chmod(0o666)
        kit.model("m1", KIT_COUNT_FILE=str(count_file))
        kit.config("c1", [{"VariantName": "AllTraffic", "ModelName": "m1", "InitialInstanceCount": 1}])
        kit.endpoint("ep", "c1")
        kit.wait("ep", timeout=90)
        tokens = {role: make_principal(url, admin, f"p-{role}", role) for role in ("viewer", "invoker", "editor")}
        yield {
            "url": url,
            "home": home,
            "admin": admin,
            "client": client,
            "kit": kit,
            "invoke": kit.runtime() + "/endpoints/ep/invocations",
            "count_file": count_file,
            "tokens": tokens,
        }
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)
        if old_origins is None:
            os.environ.pop("KAMADO_CONSOLE_ORIGINS", None)
        else:
            os.environ["KAMADO_CONSOLE_ORIGINS"] = old_origins


def _invoke(url: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, content=ROW, headers={"Content-Type": "application/json", **headers}, trust_env=False)


def _received(d: dict[str, Any]) -> int:
    return len(Path(d["count_file"]).read_text().splitlines())


def _router_invocations(d: dict[str, Any]) -> int:
    metrics = d["kit"].describe("ep")["ProductionVariants"][0]["Metrics"]
    return int(metrics["invocations"])


def test_tokens_are_required_and_roles_decide(deployed: dict[str, Any]) -> None:
    d, url = deployed, deployed["invoke"]
    before = _received(d)
    allowed = 0

    missing = _invoke(url)
    assert missing.status_code == 401
    assert missing.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert missing.headers["www-authenticate"] == 'Bearer realm="kamado"'
    assert missing.json()["ErrorCode"] == "UNAUTHORIZED" and "Authorization: Bearer" in missing.json()["Message"]

    for bad in (BAD, "not-a-token", d["tokens"]["viewer"][:-1] + "x"):
        r = _invoke(url, bad)
        assert r.status_code == 401, (bad, r.text)
        assert r.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    # A token in another scheme is read as the token itself (as on the control plane): still refused.
    assert _invoke(url, Authorization="Basic " + BAD).status_code == 401

    viewer = _invoke(url, d["tokens"]["viewer"])
    assert viewer.status_code == 403
    assert viewer.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "'p-viewer' is not allowed to InvokeEndpoint on 'ep'" in viewer.json()["Message"]
    # Unknown endpoints are refused the same way: the router says nothing about what exists to a stranger.
    assert _invoke(url.replace("/ep/", "/nope/")).status_code == 401

    for role in ("invoker", "editor"):
        r = _invoke(url, d["tokens"][role])
        assert r.status_code == 200, (role, r.text)
        assert r.json()["labels"] == [0]
        allowed += 1
    assert _invoke(url, d["admin"]).status_code == 200
    allowed += 1

    assert _received(d) - before == allowed, "a denied request reached the model server"
    assert _router_invocations(d) == _received(d), "the router forwarded something the model did not count"


def test_denials_are_audited_and_counted(deployed: dict[str, Any]) -> None:
    d, url = deployed, deployed["invoke"]
    assert _invoke(url, d["tokens"]["viewer"]).status_code == 403
    assert _invoke(url, BAD).status_code == 401
    events = d["client"].list_audit_events(Action="InvokeEndpoint", Outcome="Denied")["AuditEvents"]
    seen = {(e["Principal"], e["HttpStatus"], e["Resource"], e["Method"]) for e in events}
    assert ("p-viewer", 403, "ep", "POST") in seen
    assert (None, 401, "ep", "POST") in seen
    assert all(e["SourceIp"] == "127.0.0.1" and e["Path"] == f"/endpoints/{e['Resource']}/invocations" for e in events)
    metrics = httpx.get(d["kit"].runtime() + "/metrics", trust_env=False).text
    assert 'kamado_unrouted_requests_total{reason="forbidden"}' in metrics
    assert 'kamado_unrouted_requests_total{reason="unauthenticated"}' in metrics


def test_a_revoked_token_stops_working_within_the_cache_ttl(deployed: dict[str, Any]) -> None:
    d, url = deployed, deployed["invoke"]
    admin = d["admin"]
    h = {"Authorization": f"Bearer {admin}"}
    created = httpx.post(f"{d['url']}/api/v1/tokens", json={"Principal": "p-invoker"}, headers=h).json()
    token, token_id = created["Token"], created["TokenId"]
    assert _invoke(url, token).status_code == 200  # verified and now cached
    assert httpx.delete(f"{d['url']}/api/v1/tokens/{token_id}", headers=h).status_code == 204
    revoked_at = time.monotonic()
    while (r := _invoke(url, token)).status_code == 200:
        assert time.monotonic() - revoked_at < CACHE_TTL_S + 1.0, "revocation not honoured within the cache TTL"
        time.sleep(0.05)
    took = time.monotonic() - revoked_at
    assert r.status_code == 401 and took <= CACHE_TTL_S + 1.0, took


def test_the_sdk_sends_its_token_to_the_router(deployed: dict[str, Any]) -> None:
    d = deployed
    with Client(d["url"], token=d["tokens"]["invoker"]) as client:
        assert Predictor("ep", client=client).predict([[5.1, 3.5, 1.4, 0.2]])["labels"] == [0]
    with Client(d["url"], token=d["tokens"]["viewer"]) as client, pytest.raises(Forbidden, match="InvokeEndpoint"):
        Predictor("ep", client=client).predict([[5.1, 3.5, 1.4, 0.2]])
    with Client(d["url"], token=d["tokens"]["viewer"]) as viewer:
        runtime = viewer.runtime_url()
    with Client(d["url"], token=BAD) as client:
        client._runtime_url = runtime  # the control plane would refuse GetRuntimeUrl first; ask the router
        with pytest.raises(Unauthorized):
            client.invoke_endpoint("ep", ROW)


def test_a_cors_preflight_needs_no_token(deployed: dict[str, Any]) -> None:
    r = httpx.options(
        deployed["invoke"],
        headers={
            "Origin": CONSOLE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        trust_env=False,
    )
    assert r.status_code in (200, 204), r.text
    assert "authorization" in r.headers["access-control-allow-headers"].lower()


def test_the_router_follows_its_configuration_file(deployed: dict[str, Any]) -> None:
    """A control plane restarted in another mode rewrites router-auth.json; the live router takes it up
    within a couple of seconds (ensure_router waits for that). Loopback/off mode: no token needed, a bad
    one still 401, a viewer still 403."""
    d, url = deployed, deployed["invoke"]
    path = Path(d["home"]) / "hosting" / CONFIG_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    required = RouterAuthConfig.load(path)
    assert required is not None and required.required
    ping = d["kit"].runtime() + "/ping"
    try:
        write_config(path, RouterAuthConfig(required=False, database_url=required.database_url))
        deadline = time.monotonic() + 5
        while httpx.get(ping, trust_env=False).json()["auth"] != "optional":
            assert time.monotonic() < deadline, "the router did not re-read its configuration"
            time.sleep(0.1)
        assert _invoke(url).status_code == 200
        assert _invoke(url, BAD).status_code == 401
        assert _invoke(url, d["tokens"]["viewer"]).status_code == 403
        assert _invoke(url, d["tokens"]["invoker"]).status_code == 200
    finally:
        write_config(path, required)
        deadline = time.monotonic() + 5
        while httpx.get(ping, trust_env=False).json()["auth"] != "required":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert _invoke(url).status_code == 401


def test_failures_are_rate_limited_per_address_without_locking_out_valid_tokens(deployed: dict[str, Any]) -> None:
    d, url = deployed, deployed["invoke"]
    statuses = [_invoke(url, BAD).status_code for _ in range(25)]
    assert 429 in statuses and set(statuses) <= {401, 429}
    limited = _invoke(url, BAD)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-amzn-errortype"] == "ThrottlingException"
    assert _invoke(url, d["tokens"]["invoker"]).status_code == 200  # only failures count


def test_no_configuration_means_no_checks_and_an_unreadable_one_refuses(tmp_path: Path) -> None:
    scope: dict[str, Any] = {"headers": [(b"authorization", f"Bearer {BAD}".encode())], "client": ("10.0.0.9", 1)}
    assert RouterAuth().mode == "none" and asyncio.run(RouterAuth().check(scope, "ep")) is None
    broken = tmp_path / CONFIG_FILE
    broken.write_text("{not json")
    auth = RouterAuth(broken)
    assert auth.mode == "required"
    denial = asyncio.run(auth.check({"headers": [], "client": ("10.0.0.9", 1)}, "ep"))
    assert denial is not None and denial.status == 401


def test_the_router_mode_follows_the_control_planes_rule() -> None:
    assert requires_token("required", "127.0.0.1", "127.0.0.1")
    assert not requires_token("auto", "127.0.0.1", "127.0.0.1")  # the laptop: as before
    assert requires_token("auto", "0.0.0.0", "127.0.0.1")  # a team server: its router too
    assert requires_token("auto", "127.0.0.1", "0.0.0.0")  # a router reachable from elsewhere
    assert not requires_token("off", "127.0.0.1", "127.0.0.1")
