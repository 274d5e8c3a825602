"""Standard Webhooks signing over real HTTP: the ``standardwebhooks`` package's
``Webhook(secret).verify`` checks every request the webhook sink sends to a receiver on
127.0.0.1, with one secret and with two during a rotation."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.retry import RetryPolicy, call
from auditstream.sinks.webhook import WebhookSink
from devservices.webhook_receiver import WebhookReceiver

DESTINATION_ID = "siem-sw"
OLD_SECRET = "whsec_" + base64.b64encode(b"old-key-" * 4).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"new-key-" * 4).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"other-k-" * 4).decode()


def make_batch(n: int, first_offset: int = 0, replay_id: str | None = None) -> Batch:
    topic = f"auditstream.dest.{DESTINATION_ID}"
    events: list[dict[str, Any]] = []
    for i in range(n):
        occurred = datetime(2026, 11, 27, 10, 0, i, tzinfo=UTC)
        events.append(
            {
                "event_id": uuid.uuid4(),
                "occurred_at": occurred,
                "recorded_at": occurred,
                "account_id": "acct-sw",
                "category": "account",
                "activity": "user_login",
                "actor": {
                    "user_id": "user-9",
                    "name": "Zoë Müller",  # not ASCII: the body is verified as UTF-8 text
                    "email": "zoe@example.test",
                    "role": "admin",
                    "auth_method": "sso",
                },
                "resource": None,
                "outcome": {"status": "success", "reason": None},
                "changes": [],
                "request": None,
                "details": {},
            }
        )
    return Batch(
        destination_id=DESTINATION_ID,
        account_id="acct-sw",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, first_offset + i, b"acct-sw", b"") for i in range(n)],
        events=events,
        replay_id=replay_id,
    )


def make_sink(url: str, **settings: Any) -> WebhookSink:
    destination = WebhookDestination.model_validate(
        {
            "id": DESTINATION_ID,
            "url": url,
            "signing": "standard_webhooks",
            "timeout_s": 5.0,
            **settings,
        }
    )
    return WebhookSink(destination)


def deliver(sink: WebhookSink, batch: Batch, waits: list[float]) -> None:
    call(
        lambda: sink.write(batch),
        policy=RetryPolicy(attempts=4, base=0.01, max_wait=0.05),
        retryable=sink.is_retryable,
        sleep=waits.append,
    )


@pytest.mark.parametrize("body", ["json_array", "ndjson"])
def test_one_secret(body: str) -> None:
    with WebhookReceiver(OLD_SECRET.encode(), signing="standard_webhooks") as receiver:
        sink = make_sink(receiver.url, secret=OLD_SECRET, body=body)
        first, second = make_batch(3), make_batch(2, first_offset=3)
        try:
            sink.write(first)
            sink.write(second)
            sink.write(second)  # a retry: the same webhook-id
            sink.write(make_batch(2, first_offset=3, replay_id="r-1"))  # a replay: a new one
        finally:
            sink.close()

        assert receiver.bad_signatures == 0
        assert receiver.requests == 4
        deliveries = receiver.deliveries
        ids = [d.headers["webhook-id"] for d in deliveries]
        assert ids == [
            f"{DESTINATION_ID}:0:0-2",
            f"{DESTINATION_ID}:0:3-4",
            f"{DESTINATION_ID}:0:3-4",
            f"{DESTINATION_ID}:0:3-4:replay:r-1",
        ]
        assert [d.idempotency_key for d in deliveries] == ids
        assert [d.duplicate for d in deliveries] == [False, False, True, False]
        assert all(len(d.headers["webhook-signature"].split(" ")) == 1 for d in deliveries)
        assert all("X-Auditstream-Signature" not in d.headers for d in deliveries)


@pytest.mark.parametrize("receiver_secret", [OLD_SECRET, NEW_SECRET])
def test_two_secrets_during_rotation(receiver_secret: str) -> None:
    """A receiver that still has the old secret and one that already has the new one both
    accept every request."""
    with WebhookReceiver(receiver_secret.encode(), signing="standard_webhooks") as receiver:
        sink = make_sink(receiver.url, secret=OLD_SECRET, next_secret=NEW_SECRET)
        try:
            sink.write(make_batch(2))
            result = sink.probe()
        finally:
            sink.close()

        assert result.ok, result
        assert receiver.requests == 2
        assert receiver.bad_signatures == 0
        assert len(receiver.deliveries[0].headers["webhook-signature"].split(" ")) == 2


def test_a_wrong_secret_is_refused_by_the_verifier() -> None:
    with WebhookReceiver(OTHER_SECRET.encode(), signing="standard_webhooks") as receiver:
        sink = make_sink(receiver.url, secret=OLD_SECRET)
        waits: list[float] = []
        try:
            with pytest.raises(PermanentError) as info:
                deliver(sink, make_batch(1), waits)
        finally:
            sink.close()

        assert info.value.cause == "http_401"
        assert OLD_SECRET not in str(info.value)
        assert receiver.bad_signatures == 1


def test_receiver_answers_keep_their_meaning() -> None:
    """410 is permanent at once; 429 and 503 with Retry-After, 502 and 504 are retried."""
    with WebhookReceiver(OLD_SECRET.encode(), signing="standard_webhooks") as receiver:
        sink = make_sink(receiver.url, secret=OLD_SECRET)
        try:
            receiver.set_status(410)
            waits: list[float] = []
            with pytest.raises(PermanentError) as info:
                deliver(sink, make_batch(1), waits)
            assert info.value.cause == "http_410"
            assert receiver.requests == 1
            receiver.set_status(None)

            for status, retry_after in ((429, 0.2), (503, 0.3), (502, None), (504, None)):
                waits = []
                before = receiver.requests
                receiver.fail_next(1, status, retry_after=retry_after)
                deliver(sink, make_batch(1, first_offset=receiver.requests), waits)
                assert receiver.requests == before + 2, status
                if retry_after is not None:
                    assert waits == [pytest.approx(retry_after)], status
            receiver.set_status(503)
            with pytest.raises(TransientError):
                deliver(sink, make_batch(1, first_offset=99), [])
        finally:
            sink.close()
        assert receiver.bad_signatures == 0


def _doc_snippet() -> Callable[[str, dict[str, str], bytes], bool]:
    """The ``py`` snippet of docs/webhooks.md's Standard Webhooks section, run as written."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text("utf-8")
    (snippet,) = re.findall(r"^```py\n(.*?)^```", doc, re.S | re.M)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), namespace)  # noqa: S102  (our own doc)
    function: Callable[[str, dict[str, str], bytes], bool] = namespace["verify_standard"]
    return function


def test_the_documented_snippet_verifies_real_deliveries() -> None:
    verify_standard = _doc_snippet()
    with WebhookReceiver(NEW_SECRET.encode(), signing="standard_webhooks") as receiver:
        sink = make_sink(receiver.url, secret=OLD_SECRET, next_secret=NEW_SECRET, body="ndjson")
        try:
            sink.write(make_batch(2))
        finally:
            sink.close()
        (delivery,) = receiver.deliveries
    body = delivery.body
    for secret in (OLD_SECRET, NEW_SECRET):
        assert verify_standard(secret, delivery.headers, body)
    assert not verify_standard(OTHER_SECRET, delivery.headers, body)
    assert not verify_standard(OLD_SECRET, delivery.headers, body + b" ")
