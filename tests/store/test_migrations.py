"""Migrations and table definitions must agree, and migrations must run both ways on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from kamado.store import tables
from kamado.store.sql import SqlStore


def _drift(store: SqlStore) -> list[object]:
    with store._engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), tables.metadata))


def _roundtrip(store: SqlStore) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(tables.__file__).parent / "migrations"))
    with store._engine.connect() as conn:
        cfg.attributes["connection"] = conn.execution_options(kamado_write=True)
        command.downgrade(cfg, "base")
        conn.commit()
    store.migrate()


def test_sqlite_schema_matches_the_tables_and_migrations_reverse(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    assert _drift(store) == []
    _roundtrip(store)
    assert _drift(store) == []
    store.close()


@pytest.mark.postgres
def test_postgres_schema_matches_the_tables_and_migrations_reverse(pg_url: str) -> None:
    store = SqlStore(pg_url)
    assert _drift(store) == []
    _roundtrip(store)
    assert _drift(store) == []
    store.close()
