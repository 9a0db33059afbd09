"""Scoped tokens on a real server with tokens required: a token limited to some of its principal's role
bindings can do only what both allow; it cannot mint a token, a principal or a pipeline role with more
rights than its own; a scope outside the principal's rights is refused; the router honours the scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live_server import start_server
from tests.security.helpers import make_principal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

VIEWER = [{"Project": "default", "Role": "viewer", "Resource": "*"}]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("scope") / "home"
    server, thread, url, _ = start_server(home, auth="required")
    admin = (home / "admin.token").read_text().strip()
    try:
        yield {"url": url, "admin": admin, "editor": make_principal(url, admin, "ed", "editor")}
    finally:
        server.should_exit = True
        thread.join(30)


def _call(srv: dict[str, Any], method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{srv['url']}/api/v1{path}", headers=headers, timeout=30, trust_env=False, **kw)


def _token(srv: dict[str, Any], by: str, **body: Any) -> httpx.Response:
    return _call(srv, "POST", "/tokens", by, json=body)


def test_a_read_only_token_of_an_editor_reads_but_changes_nothing(srv: dict[str, Any]) -> None:
    made = _token(srv, srv["editor"], Description="dashboard", RoleBindings=VIEWER)
    assert made.status_code == 201, made.text
    assert made.json()["Scope"] == VIEWER
    viewer = made.json()["Token"]
    who = _call(srv, "GET", "/whoami", viewer).json()
    assert who["Principal"] == "ed" and who["TokenScope"] == VIEWER
    assert _call(srv, "GET", "/training-jobs", viewer).status_code == 200
    job = {"TrainingJobName": "never", "HyperParameters": {"sagemaker_program": '"t.py"'}}
    refused = _call(srv, "POST", "/training-jobs", viewer, json=job)
    assert refused.status_code == 403 and "CreateTrainingJob" in refused.text
    assert _call(srv, "GET", "/training-jobs/never", srv["admin"]).status_code == 404, "nothing was created"
    denied = _call(srv, "GET", "/audit?Principal=ed&Outcome=Denied", srv["admin"]).json()["AuditEvents"]
    assert any(e["Action"] == "CreateTrainingJob" for e in denied)
    listed = {t["TokenId"]: t for t in _call(srv, "GET", "/tokens", srv["editor"]).json()["Tokens"]}
    assert listed[made.json()["TokenId"]]["Scope"] == VIEWER, "the scope is shown, never the token"


def test_a_scoped_token_cannot_mint_a_broader_one(srv: dict[str, Any]) -> None:
    viewer = _token(srv, srv["editor"], RoleBindings=VIEWER).json()["Token"]
    # Without RoleBindings, its new token inherits its scope rather than the principal's full rights.
    child = _token(srv, viewer, Description="child")
    assert child.status_code == 201 and child.json()["Scope"] == VIEWER, child.text
    broader = _token(srv, viewer, RoleBindings=[{"Project": "default", "Role": "editor", "Resource": "*"}])
    assert broader.status_code == 403 and "more rights than its own" in broader.text
    # An admin's read-only token is not an admin: it cannot mint for others or create principals.
    admin_view = _token(srv, srv["admin"], RoleBindings=VIEWER).json()["Token"]
    assert _token(srv, admin_view, Principal="ed").status_code == 403
    body = {"Name": "sneaky", "RoleBindings": [{"Project": "default", "Role": "viewer"}]}
    assert _call(srv, "POST", "/principals", admin_view, json=body).status_code == 403
    assert _call(srv, "GET", "/principals", srv["admin"]).json()["Principals"], "listing still works for the admin"
    assert "sneaky" not in [p["Name"] for p in _call(srv, "GET", "/principals", srv["admin"]).json()["Principals"]]


def test_a_scope_must_lie_within_the_principals_rights(srv: dict[str, Any]) -> None:
    beyond = _token(srv, srv["editor"], RoleBindings=[{"Project": "default", "Role": "admin", "Resource": "*"}])
    assert beyond.status_code == 400 and "RoleBindings" in beyond.text and "within its principal" in beyond.text
    empty = _token(srv, srv["editor"], RoleBindings=[])
    assert empty.status_code == 400 and "RoleBindings" in empty.text
    # A narrower resource pattern works: an editor token limited to nightly-* resources.
    narrow = [{"Project": "default", "Role": "editor", "Resource": "nightly-*"}]
    made = _token(srv, srv["editor"], RoleBindings=narrow)
    assert made.status_code == 201, made.text
    token = made.json()["Token"]
    assert _call(srv, "POST", "/training-jobs/other/stop", token).status_code == 403
    assert _call(srv, "POST", "/training-jobs/nightly-1/stop", token).status_code == 404, "allowed, but no such job"


def test_the_router_honours_a_tokens_scope(tmp_path: Any) -> None:
    """InvokeEndpoint on the router: an editor's token limited to viewer may not invoke; limited to invoker
    on prod-* it may invoke prod-a but not dev-a."""
    import asyncio

    from kamado.hosting.router_auth import RouterAuth, RouterAuthConfig, write_config
    from kamado.security.policy import Binding
    from kamado.security.service import SecurityService
    from kamado.store.sql import SqlStore

    db_url = f"sqlite:///{tmp_path / 'k.db'}"
    store = SqlStore(db_url)
    security = SecurityService(store)
    security.bootstrap(tmp_path)
    security.store.create_principal("ed", "User", None, [Binding("default", "editor", "*")])
    caller = security.authenticate(security._mint("ed", None, "", None)[0])
    assert caller is not None
    viewer = security.create_token(caller, None, scope=[Binding("default", "viewer", "*")])[0]
    invoker = security.create_token(caller, None, scope=[Binding("default", "invoker", "prod-*")])[0]
    for name in ("prod-a", "dev-a"):
        store.create(kind="endpoint", name=name, arn=f"arn:{name}", state="InService", spec={}, status={})
    config = tmp_path / "router-auth.json"
    write_config(config, RouterAuthConfig(required=True, database_url=db_url))
    auth = RouterAuth(config)

    def check(token: str, endpoint: str) -> Any:
        scope = {"headers": [(b"authorization", f"Bearer {token}".encode())], "client": ("127.0.0.1", 1)}
        return asyncio.run(auth.check(scope, endpoint))

    try:
        refused = check(viewer, "prod-a")
        assert refused is not None and refused.status == 403
        assert check(invoker, "prod-a") is None
        assert check(invoker, "dev-a").status == 403
    finally:
        auth.close()
        store.close()


def test_cli_creates_a_scoped_token(srv: dict[str, Any], tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KAMADO_URL": srv["url"], "KAMADO_TOKEN": srv["editor"], "KAMADO_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "kamado", "tokens", "create", "--role", "viewer", "--description", "ro", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["Scope"] == VIEWER and made["Principal"] == "ed"
    assert _call(srv, "GET", "/whoami", made["Token"]).json()["TokenScope"] == VIEWER
