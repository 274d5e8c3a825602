"""Bad input on the activity topic is dead-lettered with its reason; everything else arrives."""

from __future__ import annotations

import struct
import time
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.log import Log, OutgoingRecord, Record
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer, to_record
from auditstream.schemas import codec
from auditstream.sinks.worker import SinkWorker
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

HEADERS = (("category", b"account"), ("activity", b"user_login"))


def _dead_letters(log: Log, expected: int, timeout: float = 30) -> list[Record]:
    reader = log.reader(topics.DEAD_LETTERS)
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        found.extend(reader.poll(100, 0.5))
    reader.close()
    return found


def test_garbage_and_unknown_schema_are_dead_lettered_and_the_rest_delivered(
    any_log: Log, tmp_path: Path
) -> None:
    log = any_log
    out = tmp_path / "out"
    settings = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "acme-files",
                    "type": "local",
                    "path": "acme",
                    "batch": {"max_events": 50, "max_age_s": 0.2},
                }
            ],
        }
    )
    publish_settings(log, [settings])
    router = Router(log)
    worker = SinkWorker(log, local_root=out)

    good = [make_event(account_id="acme") for _ in range(300)]
    valid_prefix = codec.current().fingerprint_bytes
    bad = [
        # (value, headers, reason, stage)
        (b"this is not an event", HEADERS, "malformed", "router"),
        (
            b"\xc3\x01" + struct.pack("<Q", 0xDEADBEEF) + b"body",
            HEADERS,
            "unknown_schema",
            "router",
        ),
        (codec.encode(make_event(account_id="acme")), (), "missing_header", "router"),
        # A known fingerprint with a corrupt body passes the router (it does not decode) and is
        # caught by the sink, which must decode to render JSON.
        (b"\xc3\x01" + valid_prefix + b"\xff\xff\xff\xff", HEADERS, "malformed", "sink"),
    ]
    with ActivityProducer(log) as producer:
        raw = log.producer()
        for i, event in enumerate(good):
            producer.send(event)
            if i % 75 == 0 and bad:
                value, headers, _reason, _stage = bad[(i // 75) % len(bad)]
                raw.produce(OutgoingRecord(topics.ACTIVITY, value, b"acme", headers))
        for value, headers, _reason, _stage in bad:
            raw.produce(OutgoingRecord(topics.ACTIVITY, value, b"acme", headers))
        assert raw.flush(30) == 0
        raw.close()
    # Each bad record was sent twice (once interleaved, once at the end).
    expected_bad = 2 * len(bad)

    want = {e["event_id"] for e in good}
    deadline = time.monotonic() + 120
    while set(local_event_ids(out / "acme")) != want and time.monotonic() < deadline:
        for _ in range(10):
            router.step()
            worker.step()
    worker.drain()
    got = local_event_ids(out / "acme")
    worker.close()
    router.close()

    assert sorted(got) == sorted(want)
    dead = _dead_letters(log, expected_bad)
    assert len(dead) == expected_bad
    seen = sorted(
        ((r.header("dlq.reason") or b"").decode(), (r.header("dlq.stage") or b"").decode())
        for r in dead
    )
    assert seen == sorted(2 * [(reason, stage) for _v, _h, reason, stage in bad])
    for r in dead:
        assert r.header("dlq.detail")
        assert r.header("dlq.source.topic") in (
            topics.ACTIVITY.encode(),
            b"auditstream.dest.acme-files",
        )
    # The original bytes are kept, so a fixed consumer can replay them.
    assert {r.value for r in dead} == {v for v, _h, _r, _s in bad}


def test_producer_refuses_invalid_events_and_sends_nothing(any_log: Log) -> None:
    import pytest

    from auditstream.producers.errors import ValidationError

    log = any_log
    publish_settings(log, [])
    cases = [
        (make_event(category="nope"), "category"),
        (make_event(activity="recipe_started"), "activity"),
        (make_event(event_id="not-a-uuid"), "event_id"),
        (make_event(account_id=""), "account_id"),
    ]
    with ActivityProducer(log) as producer:
        for event, field in cases:
            with pytest.raises(ValidationError) as info:
                producer.send(event)
            assert info.value.field == field
        producer.send(make_event())
    assert producer.delivered == 1
    ends = log.end_offsets(topics.ACTIVITY)
    assert sum(ends.values()) == 1
    assert to_record(make_event()).key == b"acme"
