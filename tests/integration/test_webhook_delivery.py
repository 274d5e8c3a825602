"""The webhook sink over real HTTP to the project's signature-verifying receiver (127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.retry import RetryPolicy, call
from auditstream.sinks.webhook import WebhookSink
from devservices.webhook_receiver import WebhookReceiver

SECRET = "integration-secret-5b2d"
DESTINATION_ID = "siem-it"


def make_event(second: int) -> dict[str, Any]:
    occurred = datetime(2026, 11, 27, 10, 0, second, tzinfo=UTC)
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(seconds=1),
        "account_id": "acct-it",
        "category": "account",
        "activity": "user_login",
        "actor": {
            "user_id": "user-7",
            "name": "Grace Hopper",
            "email": "grace@example.test",
            "role": "admin",
            "auth_method": "password",
        },
        "resource": None,
        "outcome": {"status": "success", "reason": None},
        "changes": [],
        "request": None,
        "details": {},
    }


def make_batch(n: int, first_offset: int = 0) -> Batch:
    topic = f"auditstream.dest.{DESTINATION_ID}"
    return Batch(
        destination_id=DESTINATION_ID,
        account_id="acct-it",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, first_offset + i, b"acct-it", b"") for i in range(n)],
        events=[make_event(i) for i in range(n)],
    )


def event_ids(batch: Batch) -> list[str]:
    return [str(e["event_id"]) for e in batch.events]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET.encode()) as running:
        yield running


def make_sink(url: str, **settings: Any) -> WebhookSink:
    destination = WebhookDestination.model_validate(
        {"id": DESTINATION_ID, "url": url, "secret": SECRET, "timeout_s": 5.0, **settings}
    )
    return WebhookSink(destination)


@pytest.fixture
def sink(receiver: WebhookReceiver) -> Iterator[WebhookSink]:
    webhook = make_sink(receiver.url)
    yield webhook
    webhook.close()


def deliver(sink: WebhookSink, batch: Batch, waits: list[float] | None = None) -> None:
    def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    call(
        lambda: sink.write(batch),
        policy=RetryPolicy(attempts=4, base=0.01, max_wait=0.05),
        retryable=sink.is_retryable,
        sleep=sleep,
    )


@pytest.mark.parametrize("body", ["json_array", "ndjson"])
def test_signed_batches_arrive(receiver: WebhookReceiver, body: str) -> None:
    sink = make_sink(receiver.url, body=body)
    first, second = make_batch(3, first_offset=0), make_batch(2, first_offset=3)
    try:
        sink.write(first)
        sink.write(second)
    finally:
        sink.close()

    assert receiver.wait_for(5, timeout=5.0)
    assert receiver.bad_signatures == 0
    assert receiver.requests == 2
    assert receiver.all_event_ids == event_ids(first) + event_ids(second)
    assert receiver.unique_event_ids() == set(event_ids(first) + event_ids(second))
    deliveries = receiver.deliveries
    assert [d.idempotency_key for d in deliveries] == [
        f"{DESTINATION_ID}:0:0-2",
        f"{DESTINATION_ID}:0:3-4",
    ]
    assert deliveries[0].headers["X-Auditstream-Destination"] == DESTINATION_ID
    stored = receiver.events[event_ids(first)[0]]
    assert stored["occurred_at"] == "2026-11-27T10:00:00Z"
    assert stored["actor"]["auth_method"] == "password"


def test_replayed_batch_is_a_duplicate_delivery(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    batch = make_batch(4, first_offset=100)

    sink.write(batch)
    sink.write(batch)

    assert receiver.requests == 2
    assert receiver.duplicate_deliveries == 1
    assert len(receiver.all_event_ids) == 8
    assert receiver.unique_event_ids() == set(event_ids(batch))
    assert [d.duplicate for d in receiver.deliveries] == [False, True]


def test_wrong_secret_is_rejected_permanently(receiver: WebhookReceiver) -> None:
    destination = WebhookDestination.model_validate(
        {"id": DESTINATION_ID, "url": receiver.url, "secret": "not-the-secret"}
    )
    sink = WebhookSink(destination)
    try:
        with pytest.raises(PermanentError) as info:
            deliver(sink, make_batch(2))
    finally:
        sink.close()

    assert info.value.cause == "http_401"
    assert "not-the-secret" not in str(info.value)
    assert receiver.requests == 1
    assert receiver.bad_signatures == 1
    assert receiver.unique_event_ids() == set()


def test_transient_failures_then_success(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    batch = make_batch(3)
    receiver.fail_next(2, 503)

    deliver(sink, batch)

    assert receiver.requests == 3
    assert receiver.unique_event_ids() == set(event_ids(batch))
    assert receiver.duplicate_deliveries == 0


def test_retry_after_is_honoured(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    batch = make_batch(2)
    receiver.fail_next(1, 429, retry_after=0.2)
    waits: list[float] = []

    deliver(sink, batch, waits)

    assert receiver.requests == 2
    assert waits == [pytest.approx(0.2)]
    assert receiver.unique_event_ids() == set(event_ids(batch))


def test_outage_exhausts_attempts(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    receiver.set_status(502)
    with pytest.raises(TransientError) as info:
        deliver(sink, make_batch(1))
    assert info.value.cause == "http_502"
    assert receiver.requests == 4

    receiver.set_status(None)
    deliver(sink, make_batch(1))
    assert receiver.requests == 5


def test_slow_receiver_times_out(receiver: WebhookReceiver) -> None:
    receiver.set_delay(1.0)
    sink = make_sink(receiver.url, timeout_s=0.2)
    try:
        with pytest.raises(TransientError) as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "timeout"


def test_refused_connection_is_transient() -> None:
    with WebhookReceiver(SECRET.encode()) as gone:
        url = gone.url
    sink = make_sink(url)
    try:
        with pytest.raises(TransientError) as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "unreachable"


def test_https_to_a_plain_http_port_is_a_tls_failure(receiver: WebhookReceiver) -> None:
    sink = make_sink(receiver.url.replace("http://", "https://"))
    try:
        with pytest.raises(PermanentError) as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "tls_failure"
