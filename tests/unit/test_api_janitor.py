"""The janitor on the embedded log: drained destinations removed, topics deleted after the
grace period, and its thread ending with its owner."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from auditstream.api.audit import RequestInfo
from auditstream.api.errors import Unavailable
from auditstream.api.models import StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.api.service import Caller, SettingsService
from auditstream.api.tokens import Principal
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from tests.fake_resolver import fake_resolver

CALLER = Caller(Principal("0" * 16, "acme", "ada", "owner"), RequestInfo(request_id="t"))
THREAD = "auditstream-api-janitor"


def _janitors() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def _service(log: EmbeddedLog, tmp_path: Path, **options: float) -> SettingsService:
    return SettingsService(
        log,
        SecretBox([SecretBox.generate_key()]),
        ApiOptions(resolver=fake_resolver({}), local_root=tmp_path, **options),  # type: ignore[arg-type]
    )


def test_removes_a_drained_destination_then_its_topic(
    embedded_log: EmbeddedLog, tmp_path: Path
) -> None:
    service = _service(embedded_log, tmp_path, janitor_interval=0, delete_grace=0.0)
    try:
        service.put_stream("acme", StreamSettingsIn(streaming_enabled=True), CALLER)
        service.create_destination("acme", {"id": "d1", "type": "local", "path": "d"}, CALLER)
        _, removed = service.delete_destination("acme", "d1", force=False, caller=CALLER)
        assert not removed
        assert service.janitor_pass() == []  # drained once
        assert service.janitor_pass() == ["d1"]  # drained twice in a row: removed
        assert service.destinations("acme") == []
        topic = topics.destination_topic("d1")
        assert topic not in service.topics_pending_deletion()  # deleted in that pass already
        assert topic not in embedded_log.list_topics()
    finally:
        service.close()


def test_keeps_a_removed_destinations_topic_for_the_grace_period(
    embedded_log: EmbeddedLog, tmp_path: Path
) -> None:
    service = _service(embedded_log, tmp_path, janitor_interval=0, delete_grace=3600.0)
    try:
        service.create_destination("acme", {"id": "d1", "type": "local", "path": "d"}, CALLER)
        service.delete_destination("acme", "d1", force=True, caller=CALLER)
        topic = topics.destination_topic("d1")
        assert service.janitor_pass() == []
        assert service.topics_pending_deletion() == {topic}
        assert topic in embedded_log.list_topics()
    finally:
        service.close()


def test_the_thread_runs_while_used_and_ends_with_its_owner(
    embedded_log: EmbeddedLog, tmp_path: Path
) -> None:
    service = _service(embedded_log, tmp_path, janitor_interval=0.05)
    service.acquire_janitor()
    service.acquire_janitor()
    assert len(_janitors()) == 1
    service.release_janitor()
    assert len(_janitors()) == 1  # one user left
    service.release_janitor()
    assert _janitors() == []
    service.acquire_janitor()
    assert len(_janitors()) == 1
    service.close()  # without releasing: closing ends it too
    assert _janitors() == []
    service.acquire_janitor()  # a closed service starts nothing
    assert _janitors() == []
    assert service.janitor_pass() == []


def test_a_closed_service_changes_and_reads_nothing(
    embedded_log: EmbeddedLog, tmp_path: Path
) -> None:
    service = _service(embedded_log, tmp_path, janitor_interval=0)
    service.close()
    service.close()  # idempotent
    with pytest.raises(Unavailable):
        service.put_stream("acme", StreamSettingsIn(streaming_enabled=True), CALLER)
    with pytest.raises(Unavailable):
        service.destinations("acme")
    assert not service.ready()
