"""A router that cannot open the settings' secrets refuses to start; an account whose latest
settings cannot be applied is known, and a later good record clears it."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream.config.errors import SecretKeyError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_table import SettingsTable
from auditstream.pipeline.settings_writer import publish_settings

BOX = SecretBox([SecretBox.generate_key()])


def _with_webhook(account_id: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": account_id,
            "destinations": [
                {
                    "type": "webhook",
                    "id": f"{account_id}-hook",
                    "url": "https://siem.example.com/in",
                    "secret": "s3cret",
                }
            ],
        }
    )


def test_a_router_without_the_key_refuses_to_start(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    publish_settings(log, [_with_webhook("acme")], BOX)
    with pytest.raises(SecretKeyError, match="acme") as info:
        Router(log)
    assert "AUDITSTREAM_SECRET_KEYS" in str(info.value)
    assert "s3cret" not in str(info.value)
    Router(log, box=BOX).close()
    log.close()


def test_unapplied_settings_are_remembered_until_a_good_record_arrives() -> None:
    table = SettingsTable(box=None)
    table.apply(b"acme", encode_settings(_with_webhook("acme"), BOX))
    table.apply(b"globex", b"{not json")
    unapplied = table.unapplied()
    assert unapplied["acme"].key_problem
    assert not unapplied["globex"].key_problem
    assert table.account("acme") is None
    table.apply(b"acme", encode_settings(AccountSettings(account_id="acme"), None))
    assert "acme" not in table.unapplied()
    assert table.account("acme") is not None


def test_a_sink_worker_without_the_key_refuses_to_start(tmp_path: Path) -> None:
    from auditstream.sinks.worker import SinkWorker

    log = EmbeddedLog(tmp_path / "log.sqlite")
    publish_settings(log, [_with_webhook("acme")], BOX)
    with pytest.raises(SecretKeyError, match="acme"):
        SinkWorker(log, local_root=tmp_path)
    SinkWorker(log, local_root=tmp_path, box=BOX).close()
    log.close()
