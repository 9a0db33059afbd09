"""The security store and services on both databases: SQLite and PostgreSQL (same assertions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kamado.core.errors import Forbidden, InvalidSpec, NotFound, ResourceInUse
from kamado.security.crypto import KeyRing
from kamado.security.policy import Binding
from kamado.security.secrets import SecretService
from kamado.security.service import LOCAL_ADMIN, SecurityService
from kamado.store.sql import SqlStore


class SecurityStoreContract:
    @pytest.fixture
    def store(self) -> Iterator[SqlStore]:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def svc(self, store: SqlStore, tmp_path: Path) -> SecurityService:
        s = SecurityService(store)
        s.bootstrap(tmp_path)
        return s

    def test_bootstrap_is_idempotent_and_keeps_a_valid_token_file(self, svc: SecurityService, tmp_path: Path) -> None:
        first = (tmp_path / "admin.token").read_text()
        svc.bootstrap(tmp_path)
        assert (tmp_path / "admin.token").read_text() == first
        caller = svc.authenticate(first.strip())
        assert caller is not None and caller.principal == LOCAL_ADMIN and caller.may("ListAuditEvents")

    def test_token_hash_is_stored_not_the_token(self, svc: SecurityService, store: SqlStore) -> None:
        admin = svc.local_admin()
        plaintext, rec = svc.create_token(admin, None, description="ci")
        with store._engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.text("select * from api_tokens"))]
        dump = repr(rows)
        assert rec.token_id in dump and plaintext not in dump and plaintext.split("_")[-1] not in dump

    def test_expired_and_revoked_tokens_stop_working(self, svc: SecurityService) -> None:
        admin = svc.local_admin()
        short, _ = svc.create_token(admin, None, expires_in_s=1)
        assert svc.authenticate(short) is not None
        time.sleep(1.1)
        assert svc.authenticate(short) is None
        other, rec = svc.create_token(admin, None)
        svc.revoke_token(admin, rec.token_id)
        assert svc.authenticate(other) is None
        with pytest.raises(NotFound):
            svc.revoke_token(admin, "000000000000")

    def test_no_token_with_more_rights_than_its_creator(self, svc: SecurityService) -> None:
        admin = svc.local_admin()
        svc.create_principal(admin, "ed", "User", [Binding("default", "editor")])
        svc.create_principal(admin, "boss", "User", [Binding("default", "admin")])
        ed_token, _ = svc.create_token(admin, "ed")
        ed = svc.authenticate(ed_token)
        assert ed is not None
        with pytest.raises(Forbidden):
            svc.create_token(ed, "boss")  # minting for someone else
        with pytest.raises(Forbidden):
            svc.create_principal(ed, "sneaky", "User", [Binding("default", "admin")])
        with pytest.raises(Forbidden):
            svc.put_binding(ed, "ed", Binding("default", "admin"))  # own roles
        own, _ = svc.create_token(ed, None)
        assert svc.authenticate(own).bindings == ed.bindings

    def test_deleting_a_principal_revokes_its_tokens(self, svc: SecurityService) -> None:
        admin = svc.local_admin()
        svc.create_principal(admin, "sa-1", "ServiceAccount", [Binding("default", "viewer")])
        token, _ = svc.create_token(admin, "sa-1")
        svc.delete_principal(admin, "sa-1")
        assert svc.authenticate(token) is None
        with pytest.raises(ResourceInUse):
            svc.create_principal(admin, LOCAL_ADMIN, "User", [])
        with pytest.raises(InvalidSpec, match="does not exist"):
            svc.create_principal(admin, "p", "User", [Binding("nowhere", "viewer")])

    def test_audit_filters_and_pages(self, svc: SecurityService) -> None:
        for i in range(5):
            svc.audit(
                principal="a" if i % 2 else "b",
                action="CreateTrainingJob",
                resource="*",
                outcome="Denied" if i == 4 else "Allowed",
                status=403 if i == 4 else 201,
                source_ip="127.0.0.1",
                method="POST",
                path="/api/v1/training-jobs",
            )
        page = svc.store.list_audit(limit=2)
        assert len(page) == 2 and page[0].id > page[1].id
        rest = svc.store.list_audit(before_id=page[-1].id, limit=10)
        assert len(page) + len(rest) == 5
        assert [e.outcome for e in svc.store.list_audit(outcome="Denied")] == ["Denied"]
        assert {e.principal for e in svc.store.list_audit(principal="a")} == {"a"}

    def test_secrets_version_rotate_and_reencrypt(self, store: SqlStore, tmp_path: Path, monkeypatch) -> None:
        monkeypatch.delenv("KAMADO_MASTER_KEY", raising=False)
        svc = SecurityService(store)
        secrets = SecretService(svc.store, KeyRing(tmp_path))
        secrets.create("db/pw", "first-canary-value", description="db")
        with pytest.raises(ResourceInUse):
            secrets.create("db/pw", "again")
        meta = secrets.rotate("db/pw", "second-canary-value")
        assert meta["Version"] == 2 and meta["Description"] == "db" and "Value" not in meta
        assert secrets.value("db/pw") == "second-canary-value"
        old_key = (tmp_path / "master.key").read_text()
        out = secrets.rotate_master_key()
        assert out["ReencryptedVersions"] == 2 and (tmp_path / "master.key").read_text() != old_key
        assert SecretService(svc.store, KeyRing(tmp_path)).value("db/pw") == "second-canary-value"
        with store._engine.connect() as conn:
            dump = repr([tuple(r) for r in conn.execute(sa.text("select * from secret_versions"))])
        assert "canary" not in dump
        assert [s["Name"] for s in secrets.list()] == ["db/pw"]
        secrets.delete("db/pw")
        with pytest.raises(NotFound):
            secrets.value("db/pw")
        with pytest.raises(InvalidSpec):
            secrets.create("../bad name", "x")


class TestSqliteSecurityStore(SecurityStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        s = SqlStore(f"sqlite:///{tmp_path / 'sec.db'}")
        yield s
        s.close()


@pytest.mark.postgres
class TestPostgresSecurityStore(SecurityStoreContract):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[SqlStore]:
        s = SqlStore(pg_url)
        yield s
        s.close()
