"""The settings cannot be read for a moment (a broker restarting under the router): the router
neither stops nor routes the batch with what it happened to read; it reads the batch again.
Embedded log, with end_offsets failing on demand."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

import pytest

from auditstream.api.audit import RequestInfo
from auditstream.api.service import SettingsService
from auditstream.api.tokens import Principal
from auditstream.api.writes import Caller
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import TopicPartition
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from tests.factories import make_event

CALLER = Caller(
    Principal(token_id="t-1", account_id="acme", user_id="u-admin", role="admin"), RequestInfo()
)


class FlakyEnds(EmbeddedLog):
    """``end_offsets`` of the settings topic fails ``failures`` times once armed."""

    failures = 0

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        if topic == topics.SETTINGS and self.failures:
            self.failures -= 1
            raise LogError("kafka: end offsets of auditstream.settings: NOT_LEADER_FOR_PARTITION")
        return super().end_offsets(topic)


def _send(log: EmbeddedLog, n: int) -> set[str]:
    ids = set()
    with ActivityProducer(log) as producer:
        for _ in range(n):
            event = make_event(account_id="acme")
            producer.send(event)
            ids.add(str(event["event_id"]))
    return ids


@pytest.mark.parametrize("failures", [1, 3])
def test_a_batch_is_read_again_when_the_settings_cannot_be_read(
    tmp_path: Path, failures: int
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    with closing(FlakyEnds(tmp_path / "log.sqlite")) as log:
        settings = AccountSettings.model_validate(
            {"account_id": "acme", "destinations": [{"id": "d-old", "type": "local", "path": "o"}]}
        )
        publish_settings(log, [settings], box)
        with closing(Router(log, box=box, poll_timeout=0.05)) as router:
            service = SettingsService(log, box)
            try:
                before = _send(log, 3)
                service.create_destination(
                    "acme", {"id": "d-new", "type": "local", "path": "n"}, CALLER
                )
                after = _send(log, 3)
            finally:
                service.close()
            log.failures = failures
            deadline = time.monotonic() + 30
            while router.lag() and time.monotonic() < deadline:
                router.step()
            assert router.lag() == 0
            assert log.failures == 0
        with closing(log.reader(topics.destination_topic("d-new"))) as reader:
            new_values = [r.value for r in reader.poll(1000, 0.5)]
        with closing(log.reader(topics.destination_topic("d-old"))) as reader:
            old_values = [r.value for r in reader.poll(1000, 0.5)]
    assert {e for e in before | after if any(e.encode() in v for v in new_values)} == after
    assert {e for e in before | after if any(e.encode() in v for v in old_values)} == before | after


def test_settings_unreadable_too_long_ends_the_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    with closing(FlakyEnds(tmp_path / "log.sqlite")) as log:
        settings = AccountSettings.model_validate(
            {"account_id": "acme", "destinations": [{"id": "d-old", "type": "local", "path": "o"}]}
        )
        publish_settings(log, [settings], box)
        with closing(Router(log, box=box, poll_timeout=0.05)) as router:
            service = SettingsService(log, box)
            try:
                service.create_destination(
                    "acme", {"id": "d-new", "type": "local", "path": "n"}, CALLER
                )
            finally:
                service.close()
            log.failures = 10**6
            monkeypatch.setattr("auditstream.pipeline.router._REWIND_RETRY_S", 0.0)
            now = [1000.0]
            monkeypatch.setattr("auditstream.pipeline.router.time.monotonic", lambda: now[0])

            def step_for_a_while() -> None:
                for _ in range(100):
                    router.step()
                    now[0] += 5.0

            with pytest.raises(LogError, match="could not be read for 60 s"):
                step_for_a_while()
