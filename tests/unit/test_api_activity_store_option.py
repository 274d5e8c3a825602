"""Which audit store ``auditstream api`` opens: --store, else AUDITSTREAM_STORE, else the
default SQLite file, which alone may fail without stopping the settings API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from auditstream.api.cli_commands import _open_audit_store
from auditstream.store.errors import StoreUnavailable


def test_the_flag_then_the_variable_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITSTREAM_STORE", f"sqlite:///{tmp_path / 'from-env.db'}")
    _open_audit_store(f"sqlite:///{tmp_path / 'from-flag.db'}").close()
    assert (tmp_path / "from-flag.db").exists()
    assert not (tmp_path / "from-env.db").exists()
    _open_audit_store(None).close()
    assert (tmp_path / "from-env.db").exists()
    monkeypatch.delenv("AUDITSTREAM_STORE")
    _open_audit_store(None).close()
    assert (tmp_path / "auditstream-audit.db").exists()


def test_a_named_store_that_cannot_be_opened_stops_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDITSTREAM_STORE", raising=False)
    (tmp_path / "a-folder.db").mkdir()
    with pytest.raises(StoreUnavailable):
        _open_audit_store(f"sqlite:///{tmp_path / 'a-folder.db'}")
    with pytest.raises(StoreUnavailable, match="unknown audit store URL scheme"):
        _open_audit_store("mysql://db/audit")
    monkeypatch.setenv("AUDITSTREAM_STORE", f"sqlite:///{tmp_path / 'a-folder.db'}")
    with pytest.raises(StoreUnavailable):
        _open_audit_store(None)


def test_a_default_store_that_cannot_be_opened_is_logged_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AUDITSTREAM_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "auditstream-audit.db").mkdir()  # where the default file would be
    with caplog.at_level(logging.WARNING, logger="auditstream"):
        assert _open_audit_store(None) is None
    assert "pass --store or set AUDITSTREAM_STORE" in caplog.text
