"""Auth modes: loopback without a token is the local admin (auto); a bad token is 401 in every mode;
``off`` is refused off loopback; ``required`` needs tokens on loopback too (see test_auth_matrix)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kamado.api.app import create_app
from kamado.core.errors import InvalidSpec
from kamado.core.settings import Settings
from tests.live_server import LiveServer, start_server


def test_loopback_auto_acts_as_local_admin_and_audits_changes(live: LiveServer) -> None:
    who = httpx.get(f"{live.url}/api/v1/whoami").json()
    assert who == {
        "Principal": "local-admin",
        "TokenId": None,
        "RoleBindings": [{"Project": "*", "Role": "admin", "Resource": "*"}],
        "TokenScope": None,
    }
    assert httpx.post(f"{live.url}/api/v1/projects", json={"Name": "team-a"}).status_code == 201
    events = live.client.list_audit_events(Action="CreateProject")["AuditEvents"]
    assert [(e["Principal"], e["Outcome"], e["HttpStatus"], e["SourceIp"]) for e in events] == [
        ("local-admin", "Allowed", 201, "127.0.0.1")
    ]


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_an_invalid_token_is_401_in_every_mode(tmp_path: Path, mode: str) -> None:
    server, thread, url, _ = start_server(tmp_path / "home", auth=mode)
    try:
        r = httpx.get(f"{url}/api/v1/training-jobs", headers={"Authorization": "Bearer kmd_000000000000_" + "C" * 43})
        assert r.status_code == 401
        assert httpx.get(f"{url}/api/v1/training-jobs").status_code == 200  # no token on loopback: local admin
    finally:
        server.should_exit = True
        thread.join(30)


def test_auth_off_is_refused_off_loopback_and_unknown_modes_are_named(tmp_path: Path) -> None:
    base = {"home": tmp_path, "database_url": f"sqlite:///{tmp_path / 'k.db'}", "artifacts_url": str(tmp_path / "a")}
    with pytest.raises(InvalidSpec, match=r"auth=off is refused on 0\.0\.0\.0"):
        create_app(Settings.from_env(**base, host="0.0.0.0", auth="off"), run_reconcilers=False)
    with pytest.raises(InvalidSpec, match="Unknown auth mode 'maybe'") as err:
        create_app(Settings.from_env(**base, auth="maybe"), run_reconcilers=False)
    assert err.value.details == [{"field": "auth", "message": "unknown mode"}]
