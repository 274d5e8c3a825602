"""A real PostgreSQL server for the tests (session-scoped: one ``initdb`` per run) and a fresh
database of the audit store for each test that asks for one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditstream.store.postgres_store import PostgresStore
from devservices.postgres import PostgresServer

_TEMPLATE = "audit_store_template"
_template_lock = threading.Lock()
_templates: set[str] = set()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One server for the session on 127.0.0.1 (about a second to start); tests that stop or
    crash a server start their own with ``PostgresServer.start``."""
    with PostgresServer.start(Path(tmp_path_factory.mktemp("postgres"))) as server:
        yield server


def migrated_database(server: PostgresServer) -> str:
    """A new database with the audit store's tables (copied from a migrated template, made
    once per server); returns its DSN."""
    with _template_lock:
        if str(server.data_dir) not in _templates:
            with PostgresStore(server.create_database(_TEMPLATE)) as store:
                store.migrate()
            _templates.add(str(server.data_dir))
    return server.create_database(f"t_{uuid.uuid4().hex[:20]}", template=_TEMPLATE)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a database of this test's own, migrated; dropped afterwards."""
    dsn = migrated_database(postgres_server)
    yield dsn
    postgres_server.drop_database(dsn.rsplit("/", 1)[1])
