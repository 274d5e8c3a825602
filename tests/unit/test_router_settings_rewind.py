"""A batch holding a settings change's audit event that is not committed is routed again with
the settings as they were before it (ADR 017): the change applies at its audit event on the
second try too. Embedded log; the first transaction is aborted by a wrapper."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

from auditstream.api.audit import RequestInfo
from auditstream.api.service import SettingsService
from auditstream.api.tokens import Principal
from auditstream.api.writes import Caller
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import TransactionAborted
from auditstream.pipeline.log import Consumer, OutgoingRecord, TopicPartition
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from tests.factories import make_event

CALLER = Caller(
    Principal(token_id="t-1", account_id="acme", user_id="u-admin", role="admin"), RequestInfo()
)


class AbortFirst:
    """Aborts the first transaction, then stores."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.aborted = 0

    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        if not self.aborted:
            self.aborted += 1
            raise TransactionAborted("aborted by the test")
        self.inner.produce_and_commit(records, consumer, offsets)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


def _send(log: EmbeddedLog, n: int) -> set[str]:
    ids = set()
    with ActivityProducer(log) as producer:
        for _ in range(n):
            event = make_event(account_id="acme")
            producer.send(event)
            ids.add(str(event["event_id"]))
    return ids


def test_an_aborted_batch_is_routed_again_with_the_settings_before_the_change(
    tmp_path: Path,
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    with closing(EmbeddedLog(tmp_path / "log.sqlite")) as log:
        settings = AccountSettings.model_validate(
            {"account_id": "acme", "destinations": [{"id": "d-old", "type": "local", "path": "o"}]}
        )
        publish_settings(log, [settings], box)
        with closing(Router(log, box=box, poll_timeout=0.05)) as router:
            wrapper = AbortFirst(router._producer)
            router._producer = wrapper  # type: ignore[assignment]
            service = SettingsService(log, box)
            try:
                before = _send(log, 3)
                service.create_destination(
                    "acme", {"id": "d-new", "type": "local", "path": "n"}, CALLER
                )
                after = _send(log, 3)
            finally:
                service.close()
            deadline = time.monotonic() + 30
            while router.lag() and time.monotonic() < deadline:
                router.step()
            assert router.lag() == 0
            assert wrapper.aborted == 1
        with closing(log.reader(topics.destination_topic("d-new"))) as reader:
            values = [r.value for r in reader.poll(1000, 0.5)]
    got = {e for e in before | after if any(e.encode() in v for v in values)}
    assert got == after
