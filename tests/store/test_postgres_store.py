from __future__ import annotations

from collections.abc import Iterator

import pytest

from kamado.store.sql import SqlStore
from kamado.testing.store_contract import StoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[SqlStore]:
        s = SqlStore(pg_url)
        yield s
        s.close()


def test_concurrent_migrations_are_serialised(pg_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            SqlStore(pg_url).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
