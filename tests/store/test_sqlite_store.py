from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from kamado.store.sql import _MIGRATIONS, SqlStore
from kamado.testing.store_contract import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        s = SqlStore(f"sqlite:///{tmp_path / 'k.db'}")
        yield s
        s.close()


def test_sqlite_is_opened_durably(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    store = SqlStore(f"sqlite:///{db}")
    with store._engine.connect() as conn:  # the pragmas are per connection: check one of ours
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    store.close()


def test_reopen_keeps_data_and_migrations_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    s1 = SqlStore(url)
    s1.create(kind="training-job", name="keep", arn="a", state="InProgress", spec={}, status={})
    s1.close()
    s2 = SqlStore(url)
    assert s2.get("training-job", "keep").state == "InProgress"
    s2.close()
    con = sqlite3.connect(tmp_path / "r.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None and head >= "0003"
    assert con.execute("select version_num from alembic_version").fetchall() == [(head,)]
    con.close()


def test_two_store_instances_on_one_file_do_not_deadlock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    a, b = SqlStore(url), SqlStore(url)
    for i in range(20):
        (a if i % 2 else b).create(kind="k", name=f"n{i}", arn="x", state="s", spec={}, status={})
    assert len(a.list_in_states("k", ["s"])) == 20
    a.close()
    b.close()
