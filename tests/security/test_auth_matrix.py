"""T10: every route x {no token, malformed, expired, revoked, other project, viewer, editor, admin, invoker}.

A real server (uvicorn on loopback) with ``auth=required``. Denied calls must change nothing in the
database and each must be audited; a route without an action mapping fails this test.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.security.actions import PUBLIC, SELF_SERVICE, action_for
from kamado.security.policy import Binding
from tests.live_server import start_server
from tests.security.helpers import MISSING, all_routes, concrete, make_principal

ROLES = {"viewer": "default", "editor": "default", "admin": "default", "invoker": "default", "outsider": "other"}
#: Allowed calls that would start processes we do not want in this test (the data-plane router).
SKIP_ALLOWED = {("GET", "/api/v1/runtime")}
#: Tables a denied call must leave untouched (the audit log is expected to grow; leases renew).
SNAPSHOT_SKIP = {"audit_events", "kamado_meta", "alembic_version"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    home = tmp_path / "home"
    srv, thread, url, app = start_server(home, auth="required")
    app.state.security.limiter.max_failures = 10**6  # this test sends hundreds of bad tokens on purpose
    try:
        yield {"url": url, "app": app, "home": home, "admin": (home / "admin.token").read_text().strip()}
    finally:
        srv.should_exit = True
        thread.join(30)


def _snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {
            n: sorted(con.execute(f'select * from "{n}"').fetchall(), key=repr) for n in names if n not in SNAPSHOT_SKIP
        }
    finally:
        con.close()


def _denied_count(url: str, admin: str) -> int:
    n, token = 0, None
    while True:
        params: dict[str, Any] = {"Outcome": "Denied", "MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = httpx.get(f"{url}/api/v1/audit", params=params, headers={"Authorization": f"Bearer {admin}"}).json()
        n += len(page["AuditEvents"])
        token = page.get("NextToken")
        if not token:
            return n


def _call(client: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
    return client.request(method, path, headers=headers, json=body)


def test_every_route_has_an_action_mapping(server: dict[str, Any]) -> None:
    routes = all_routes(server["app"])
    assert len(routes) > 60
    unmapped = []
    for method, template in routes:
        found = action_for(method, concrete(template))
        # A mount (static files) is covered by a prefix rule; a route needs its own exact entry.
        exact = template.endswith("/{path:path}") or (found is not None and found.template == template)
        if found is None or not exact:
            unmapped.append(f"{method} {template}")
    assert unmapped == [], "add these routes to kamado.security.actions (and the docs' table)"


def test_auth_matrix_over_every_route(server: dict[str, Any]) -> None:
    url, admin, app = server["url"], server["admin"], server["app"]
    tokens = {
        role: make_principal(
            url, admin, f"p-{role}", "admin" if role == "admin" else ("viewer" if role == "outsider" else role), project
        )
        for role, project in ROLES.items()
    }
    expired = make_principal(url, admin, "p-expired", "admin", ExpiresInSeconds=1)
    revoked = make_principal(url, admin, "p-revoked", "admin")
    revoked_id = revoked.split("_")[1]
    assert (
        httpx.delete(f"{url}/api/v1/tokens/{revoked_id}", headers={"Authorization": f"Bearer {admin}"}).status_code
        == 204
    )
    time.sleep(1.1)
    bad = {
        "none": None,
        "malformed": "not-a-token",
        "expired": expired,
        "revoked": revoked,
        "forged": "kmd_" + revoked_id + "_" + "A" * 43,
    }
    bindings = {role: Binding(project, "viewer" if role == "outsider" else role) for role, project in ROLES.items()}

    routes = all_routes(app)
    db = server["home"] / "kamado.db"
    before = _snapshot(db)
    denied_before = _denied_count(url, admin)
    denied_calls = 0
    allowed: list[tuple[str, str, str]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, template in routes:
            path = concrete(template)
            route = action_for(method, path)
            assert route is not None
            if route.action == PUBLIC:
                assert _call(client, method, path, None).status_code not in (401, 403), template
                continue
            for label, token in bad.items():
                r = _call(client, method, path, token)
                assert r.status_code == 401, (label, method, template, r.status_code, r.text[:200])
                assert r.json()["code"] == "Unauthorized" and "www-authenticate" in r.headers
                denied_calls += 1
            for role, token in tokens.items():
                may = route.action in SELF_SERVICE or bindings[role].allows(route.action, "default", MISSING)
                if may:
                    allowed.append((role, method, template))
                    continue
                r = _call(client, method, path, token)
                assert r.status_code == 403, (role, method, template, r.status_code, r.text[:200])
                assert route.action in r.json()["message"]
                denied_calls += 1
    assert _snapshot(db) == before, "a denied call changed the database"
    assert _denied_count(url, admin) - denied_before == denied_calls, "every denial is audited"

    # Spot checks that do not trust the policy module: the matrix's headline rows.
    assert ("viewer", "GET", "/api/v1/training-jobs/{name}") in allowed
    assert ("viewer", "POST", "/api/v1/training-jobs") not in allowed
    assert ("editor", "POST", "/api/v1/training-jobs") in allowed
    assert ("editor", "GET", "/api/v1/audit") not in allowed
    assert ("invoker", "POST", "/api/v1/functions/{name}/invocations") in allowed
    assert ("invoker", "GET", "/api/v1/functions/{name}") not in allowed
    assert not any(role == "outsider" and t.startswith("/api/v1/training") for role, _, t in allowed)

    with httpx.Client(base_url=url, timeout=30) as client:
        for role, method, template in allowed:
            if (method, template) in SKIP_ALLOWED:
                continue
            r = _call(client, method, concrete(template), tokens[role])
            assert r.status_code not in (401, 403), (role, method, template, r.status_code, r.text[:200])
