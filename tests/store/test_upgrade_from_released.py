"""Every released schema, saved as a database file, must open, upgrade and keep its data.

`fixtures/schema-<revision>.sqlite` is written once per released migration revision and never edited;
add one whenever a migration ships.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kamado.store.sql import SqlStore

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("schema-*.sqlite"))


@pytest.mark.parametrize("saved", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_saved_database_upgrades_and_keeps_its_data(saved: Path, tmp_path: Path) -> None:
    db = tmp_path / saved.name
    shutil.copy(saved, db)
    store = SqlStore(f"sqlite:///{db}")
    job = store.get("training-job", "saved-job")
    assert job.project == "default"  # rows from before per-project resources (0004) live in the default project
    assert job.state == "Completed" and job.spec["HyperParameters"] == {"a": "1"} and job.tags == {"team": "a"}
    assert [a.exit_code for a in store.list_attempts("training-job", "saved-job")] == [0]
    assert [c.data for c in store.read_logs("training-job", "saved-job")] == ["hello\n"]
    assert store.log_offset("training-job", "saved-job", 1) == 6
    assert [(p.metric, p.value) for p in store.final_metrics("training-job", "saved-job")] == [("acc", 0.9)]
    store.create(kind="training-job", name="new-job", arn="a", state="InProgress", spec={}, status={})
    store.close()


def test_there_is_a_fixture_for_the_first_schema() -> None:
    assert [p.stem for p in FIXTURES][:1] == ["schema-0001"]


def test_a_0003_store_upgrades_with_its_rows_in_the_default_project(tmp_path: Path) -> None:
    """0004 adds ``resources.project``: every old row lands in ``default``, visible there and only there."""
    from kamado.core.projects import project_scope

    db = tmp_path / "old.sqlite"
    shutil.copy(Path(__file__).parent / "fixtures" / "schema-0003.sqlite", db)
    store = SqlStore(f"sqlite:///{db}")
    with project_scope("default"):
        assert [r.name for r in store.list("training-job").items] == ["saved-job"]
    with project_scope("other"):
        assert store.list("training-job").items == []
    with store._engine.connect() as conn:
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(resources)")}
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert "ix_resources_kind_project_created" in indexes and "ix_resources_kind_state" in indexes
    assert version == "0004"
    store.close()


def test_a_secret_stored_before_0004_is_a_default_project_secret_and_still_decrypts(tmp_path: Path) -> None:
    """0004 adds ``secret_versions.project``: a secret written by an older server (associated data without a
    project) is found in ``default`` only, and its ciphertext still opens under the new code."""
    import sqlite3
    import time

    from kamado.core.projects import project_scope
    from kamado.security.crypto import KeyRing
    from kamado.security.secrets import SecretService
    from kamado.security.store import SecurityStore

    db = tmp_path / "old.sqlite"
    shutil.copy(Path(__file__).parent / "fixtures" / "schema-0003.sqlite", db)
    ring = KeyRing(tmp_path / "keys")
    key_id, blob = ring.encrypt("old-value-1234", "kamado-secret:db/password:1")  # as 0003-era servers wrote it
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO secret_versions (name, version, key_id, ciphertext, description, created_by, created_at) "
            "VALUES ('db/password', 1, ?, ?, '', 'admin', ?)",
            (key_id, blob, time.time()),
        )
    store = SqlStore(f"sqlite:///{db}")
    try:
        secrets = SecretService(SecurityStore(store), ring)
        assert secrets.value("db/password") == "old-value-1234"
        assert secrets.describe("db/password")["Project"] == "default"
        with project_scope("other"):
            assert secrets.list() == []
    finally:
        store.close()
