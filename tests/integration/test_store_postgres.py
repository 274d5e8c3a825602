"""The PostgreSQL audit store against a real server: the backend contract every store passes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from auditstream.store.postgres_store import PostgresStore
from tests.postgres_fixtures import postgres_dsn  # noqa: F401  # a fixture
from tests.store_contract import RawSql, StoreContract


class TestPostgresContract(StoreContract):
    @pytest.fixture
    def store(self, postgres_dsn: str) -> Iterator[PostgresStore]:  # noqa: F811
        store = PostgresStore(postgres_dsn)
        yield store
        store.close()

    @pytest.fixture
    def raw_sql(self, postgres_dsn: str) -> RawSql:  # noqa: F811
        def run(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                cursor = conn.execute(statement.replace("?", "%s").encode(), params)
                return cursor.fetchall() if cursor.description else []

        return run
