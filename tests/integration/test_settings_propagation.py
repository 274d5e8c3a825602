"""A settings change reaches a running router within 5 s, without restart (both backends)."""

from __future__ import annotations

import time
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.log import Log
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from tests.factories import make_event


def _settings(**kw: object) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [{"id": "acme-d", "type": "local", "path": "x"}],
            **kw,
        }
    )


def _routed(log: Log) -> int:
    """Records in the destination topic (read back: Kafka end offsets count txn markers)."""
    reader = log.reader(topics.destination_topic("acme-d"))
    count, empty_polls = 0, 0
    while empty_polls < 3:
        got = reader.poll(1000, 0.5)
        count += len(got)
        empty_polls = 0 if got else empty_polls + 1
    reader.close()
    return count


def test_inclusion_change_takes_effect_within_five_seconds(any_log: Log, tmp_path: Path) -> None:
    log = any_log
    publish_settings(log, [_settings(include_categories=["team"])])
    router = Router(log)

    def send_and_route(n: int) -> None:
        with ActivityProducer(log) as producer:
            for _ in range(n):
                producer.send(make_event(account_id="acme"))  # category account
        deadline = time.monotonic() + 30
        while router.lag() and time.monotonic() < deadline:
            router.step()

    send_and_route(10)
    before = _routed(log)
    assert before == 0  # category "account" not included yet

    publish_settings(log, [_settings(include_categories=["team", "account"])])
    changed_at = time.monotonic()

    def seen() -> bool:
        current = router.settings.account("acme")
        return current is not None and current.include_categories == ["team", "account"]

    while not seen():
        router.step()
        assert time.monotonic() - changed_at < 5.0, "settings change not seen within 5 s"

    send_and_route(10)
    after = _routed(log)
    assert after == 10
    router.close()
