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
    assert job.state == "Completed" and job.spec["HyperParameters"] == {"a": "1"} and job.tags == {"team": "a"}
    assert [a.exit_code for a in store.list_attempts("training-job", "saved-job")] == [0]
    assert [c.data for c in store.read_logs("training-job", "saved-job")] == ["hello\n"]
    assert store.log_offset("training-job", "saved-job", 1) == 6
    assert [(p.metric, p.value) for p in store.final_metrics("training-job", "saved-job")] == [("acc", 0.9)]
    store.create(kind="training-job", name="new-job", arn="a", state="InProgress", spec={}, status={})
    store.close()


def test_there_is_a_fixture_for_the_first_schema() -> None:
    assert [p.stem for p in FIXTURES][:1] == ["schema-0001"]
