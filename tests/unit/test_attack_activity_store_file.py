"""The SQLite audit store's file taken away while a process has it open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditstream.store.errors import StoreError
from auditstream.store.query import ActivityFilter
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event


def test_a_store_file_deleted_while_open_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with SqliteStore(path) as store:
        store.append([make_event()])
        for name in list(tmp_path.iterdir()):
            os.remove(name)  # the file, its -wal and -shm
        with pytest.raises(StoreError, match=r"audit\.db"):
            store.append([make_event()])
    with SqliteStore(path) as reopened:
        assert reopened.count(ActivityFilter("acme")) == 0
