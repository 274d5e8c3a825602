"""``auditstream store ...`` and opening a store from its URL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditstream.cli import main
from auditstream.store.cli_commands import shown_url
from auditstream.store.errors import StoreUnavailable
from auditstream.store.open_store import default_store_url, open_store, sqlite_path
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///audit.db", "audit.db"),
        ("sqlite:////var/lib/audit.db", "/var/lib/audit.db"),
        ("sqlite:///with%20space.db", "with space.db"),
        ("audit.db", "audit.db"),
        ("/abs/audit.db", "/abs/audit.db"),
        ("postgresql://u@h/db", None),
        ("https://example.com/x", None),
    ],
)
def test_sqlite_path(url: str, path: str | None) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://audit.db", "not a SQLite store URL"),
        ("sqlite:///", "names no file"),
        ("mysql://u@h/db", "unknown audit store URL scheme 'mysql'"),
        ("  ", "no audit store given"),
    ],
)
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(StoreUnavailable, match=message):
        open_store(url)


def test_default_store_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITSTREAM_STORE", raising=False)
    assert default_store_url() == "sqlite:///auditstream-audit.db"
    monkeypatch.setenv("AUDITSTREAM_STORE", "sqlite:///x.db")
    assert default_store_url() == "sqlite:///x.db"


def test_shown_url_hides_the_password() -> None:
    assert (
        shown_url("postgresql://app:s3cret@db:5432/audit") == "postgresql://app:***@db:5432/audit"
    )
    assert shown_url("sqlite:///a.db") == "sqlite:///a.db"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def test_migrate_then_verify(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "migrate", "--store", f"sqlite:///{db}"]) == 0
    with SqliteStore(db) as store:
        store.append([make_event() for _ in range(3)])
    assert main(["store", "verify", "--store", str(db), "--account", "acme"]) == 0
    assert "3 events, hash chain intact" in capsys.readouterr().out
    conn = sqlite3.connect(db)
    conn.execute("UPDATE events SET canonical = canonical || ' ' WHERE seq = 2")
    conn.commit()
    conn.close()
    assert main(["store", "verify", "--store", str(db), "--account", "acme"]) == 1
    out = capsys.readouterr().out
    assert "broken at seq 2, event " in out
    assert "altered" in out


def test_retention_and_override(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2027, 12, 1, tzinfo=UTC)
    with SqliteStore(db) as store:
        store.append([make_event(occurred_at=now - timedelta(days=d)) for d in (400, 100, 5)])
    args = ["--store", str(db)]
    assert main(["store", "retention", *args, "--now", "2027-12-01T00:00:00Z"]) == 0
    assert "deleted 1 expired events of 1 accounts" in capsys.readouterr().out
    assert main(["store", "retention-override", *args, "--account", "acme", "--days", "30"]) == 0
    assert "kept 30 days" in capsys.readouterr().out
    assert main(["store", "retention", *args, "--now", "2027-12-01"]) == 0
    assert "deleted 1 expired" in capsys.readouterr().out
    assert main(["store", "retention-override", *args, "--account", "acme", "--default"]) == 0
    assert "kept 365 days from the event (the default)" in capsys.readouterr().out
    assert main(["store", "verify", *args, "--account", "acme"]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["store", "retention-override", "--account", "acme", "--days", "0"],
        ["store", "retention-override", "--account", "acme", "--days", "x"],
        ["store", "retention-override", "--account", "acme"],
        ["store", "retention-override", "--account", "", "--days", "3"],
        ["store", "retention", "--now", "yesterday"],
        ["store", "verify"],
        ["indexer", "--batch-size", "0"],
        ["indexer", "--retention-interval", "-1"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str], db: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--store", str(db)])
    assert exc.value.code == 2
    assert not db.exists()


def test_a_store_that_cannot_open_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such" / "audit.db"
    assert main(["store", "migrate", "--store", str(missing)]) == 2
    assert "check that the folder" in capsys.readouterr().err


def test_help_never_shows_a_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITSTREAM_STORE", "postgresql://app:hunter2@db/audit?x=%41%(")
    with pytest.raises(SystemExit):
        main(["store", "verify", "--help"])
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "app:***@db" in out
