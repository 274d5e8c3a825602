"""The producer SDK checks the schema by encoding (one walk of the event, not two): it accepts
and refuses exactly what validating then encoding did, with the same bytes; ``send_many``
queues a batch whole or not at all."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from auditstream.pipeline.log import DeliveryCallback, OutgoingRecord
from auditstream.producers.errors import ValidationError
from auditstream.producers.sdk import ActivityProducer, to_record
from auditstream.producers.validation import validate_event
from auditstream.schemas import codec
from tests.factories import make_event
from tests.unit.fast_path_events import HOSTILE_TEXT, catalog_events

BAD_VALUES: list[tuple[str, Any]] = [
    ("account_id", 5),
    ("account_id", b"acme"),
    ("account_id", ""),
    ("account_id", True),
    ("category", "no-such-category"),
    ("activity", "'; DROP TABLE events;--"),
    ("event_id", "not-a-uuid"),
    ("event_id", None),
    ("occurred_at", "2026-11-27T10:00:00Z"),
    ("actor", {"user_id": "u", "name": None, "email": None, "role": None, "auth_method": "x"}),
    ("actor", {"user_id": None, "name": None, "email": None, "role": None, "auth_method": "sso"}),
    ("actor", {"name": None, "email": None, "role": None, "auth_method": "sso"}),
    ("details", [("a", "b")]),
    ("details", {"a": 1}),
    ("details", {1: "a"}),
    ("changes", "abc"),
    ("changes", [{"field": 1, "old_value": None, "new_value": None}]),
    ("resource", {"type": "x"}),
    ("request", "x"),
    ("request", {"ip": 1.5, "user_agent": None, "request_id": None, "session_id": None}),
    ("outcome", None),
    ("outcome", {"status": "maybe", "reason": None}),
]


def ordinary(event: dict[str, Any]) -> bytes | type[Exception]:
    """What validating, then encoding gave: the bytes, or a refusal (some shapes made
    fastavro's check raise its own error out of ``send``: a refusal all the same)."""
    try:
        validate_event(event)
        return codec.encode(event)
    except (ValidationError, TypeError, ValueError, AttributeError, KeyError, IndexError):
        return ValidationError


def fast(event: dict[str, Any]) -> bytes | type[Exception]:
    try:
        return to_record(event).value
    except ValidationError:
        return ValidationError


def test_every_catalog_activity_encodes_to_the_same_bytes() -> None:
    for event in catalog_events():
        assert fast(event) == ordinary(event)


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_what_validation_refused_is_refused(field: str, value: Any) -> None:
    event = make_event()
    event[field] = value
    assert ordinary(event) is ValidationError
    assert fast(event) is ValidationError


def test_random_damage_is_judged_as_before() -> None:
    rng = random.Random(20261128)
    replacements: list[Any] = [
        *(None, 0, -1, 2**70, 1.5, float("nan"), True, "", HOSTILE_TEXT, "x" * 100_000),
        *(b"", b"x", [], (), set(), ("a",), {}, {"field": "f"}, [{"field": "f"}], {"k": None}),
    ]
    for _ in range(1500):
        event = make_event(
            details={"k": "v"}, changes=[{"field": "f", "old_value": None, "new_value": "n"}]
        )
        target: dict[str, Any] = event
        for part in ("actor", "outcome", "request", "resource", "details", None):
            if part is not None and rng.random() < 0.25 and isinstance(event[part], dict):
                target = event[part]
                break
        key = rng.choice(sorted(target))
        target[key] = rng.choice(replacements)
        assert fast(event) == ordinary(event), (key, target[key])


def test_text_that_cannot_be_encoded_is_a_validation_error() -> None:
    """A lone surrogate passed the schema check and the encoder raised UnicodeEncodeError out
    of ``send``; it is a ValidationError now."""
    event = make_event()
    event["actor"]["name"] = "\ud800"
    with pytest.raises(ValidationError, match="cannot be encoded"):
        to_record(event)


class RecordingProducer:
    def __init__(self) -> None:
        self.produced: list[OutgoingRecord] = []

    def produce(self, record: OutgoingRecord, on_delivery: DeliveryCallback | None = None) -> None:
        self.produced.append(record)
        if on_delivery is not None:
            on_delivery(None, record)

    def flush(self, timeout: float = 30.0) -> int:
        return 0

    def close(self) -> None:
        return None


class OneProducerLog:
    def __init__(self) -> None:
        self.the_producer = RecordingProducer()

    def producer(self) -> RecordingProducer:
        return self.the_producer


def test_send_many_queues_every_event_in_order() -> None:
    log = OneProducerLog()
    events = catalog_events()[:20]
    with ActivityProducer(log) as producer:  # type: ignore[arg-type]
        assert producer.send_many(events) == 20
    assert [r.value for r in log.the_producer.produced] == [codec.encode(e) for e in events]
    assert producer.delivered == 20


def test_send_many_with_an_invalid_event_queues_nothing() -> None:
    log = OneProducerLog()
    events = [make_event(), make_event(event_id="nope"), make_event()]
    producer = ActivityProducer(log)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"events\[1\]\.event_id: must be a UUID") as caught:
        producer.send_many(events)
    assert caught.value.field == "events[1].event_id"
    assert log.the_producer.produced == []
    producer.close()


def test_send_many_of_nothing_sends_nothing() -> None:
    log = OneProducerLog()
    producer = ActivityProducer(log)  # type: ignore[arg-type]
    assert producer.send_many(iter([])) == 0
    producer.close()
    assert str(uuid.UUID(make_event()["event_id"]))
