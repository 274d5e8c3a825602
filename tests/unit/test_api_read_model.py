"""The API's read model: its own writes at once, older records skipped until the reader
catches up, unreadable accounts refused (on the embedded log)."""

from __future__ import annotations

import pytest

from auditstream.api import read_model
from auditstream.api.errors import Unavailable
from auditstream.api.read_model import SettingsReadModel
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import OutgoingRecord

BOX = SecretBox([SecretBox.generate_key()])


def _settings(*dest_ids: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [{"id": d, "type": "local", "path": d} for d in dest_ids],
        }
    )


def _store(log: EmbeddedLog, value: bytes) -> None:
    log.create_topic(topics.SETTINGS, compacted=True)
    producer = log.producer()
    producer.produce(OutgoingRecord(topics.SETTINGS, value, key=b"acme"))
    producer.close()


def _model(log: EmbeddedLog) -> SettingsReadModel:
    model = SettingsReadModel(log, BOX)
    model.catch_up()
    return model


def test_own_write_is_seen_at_once_and_older_records_are_skipped(
    embedded_log: EmbeddedLog,
) -> None:
    model = _model(embedded_log)
    older, written = encode_settings(_settings("d1"), BOX), encode_settings(_settings("d2"), BOX)
    _store(embedded_log, older)  # another writer, before ours
    _store(embedded_log, written)
    with model.lock:
        model.apply_written("acme", written)
    with model.fresh(min_interval=0.0):
        assert model.current("acme") == _settings("d2")  # "older" was skipped
    _store(embedded_log, encode_settings(_settings("d3"), BOX))  # after ours: followed
    with model.fresh(min_interval=0.0):
        assert model.current("acme") == _settings("d3")
    model.close()


def test_a_write_never_read_back_stops_hiding_records(
    embedded_log: EmbeddedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(embedded_log)
    with model.lock:
        model.apply_written("acme", encode_settings(_settings("d2"), BOX))
    monkeypatch.setattr(read_model, "PENDING_TIMEOUT_S", 0.0)
    _store(embedded_log, encode_settings(_settings("d1"), BOX))
    with model.fresh(min_interval=0.0):
        assert model.current("acme") == _settings("d1")
    model.close()


def test_an_account_sealed_with_another_key_is_refused(embedded_log: EmbeddedLog) -> None:
    _store(embedded_log, encode_settings(_settings("d1"), BOX))
    other = SecretBox([SecretBox.generate_key()])
    hook = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "h",
                    "type": "webhook",
                    "url": "https://siem.example.com/in",
                    "secret": "s3cret-value-123",
                }
            ],
        }
    )
    _store(embedded_log, encode_settings(hook, other))
    model = _model(embedded_log)
    with model.fresh(), pytest.raises(Unavailable, match="secret key"):
        model.current("acme")
    assert model.unreadable == {"acme"}
    assert model.account("acme") == _settings("d1")  # the last readable settings
    _store(embedded_log, encode_settings(_settings("d4"), BOX))
    with model.fresh(min_interval=0.0):
        assert model.current("acme") == _settings("d4")
    assert model.unreadable == set()
    model.close()


def test_a_closed_model_is_unavailable(embedded_log: EmbeddedLog) -> None:
    model = _model(embedded_log)
    model.close()
    with pytest.raises(Unavailable), model.fresh(min_interval=0.0):
        pass
