"""The webhook sink's write result and its probe (a signed empty batch) against httpx's
MockTransport."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.base import NOTHING_WRITTEN, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from auditstream.sinks.webhook import CHECK_HEADER, WebhookSink
from tests.factories import make_event

SECRET = "whsec-probe-secret-5c2d"
PATH_TOKEN = "collector-token-31aa"
URL = f"https://siem.example.test/in/{PATH_TOKEN}"
NOW = 1_795_000_000.25
DOING = "posting a signed empty batch to receiver siem.example.test"


def make_sink(
    answer: httpx.Response | Exception,
    sent: list[httpx.Request],
    *,
    body: str = "json_array",
    policy: AddressPolicy | None = None,
) -> WebhookSink:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    destination = WebhookDestination.model_validate(
        {"id": "siem-1", "url": URL, "secret": SECRET, "body": body}
    )
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookSink(destination, client=client, clock=lambda: NOW, address_policy=policy)


def make_batch(events: int) -> Batch:
    topic = "auditstream.dest.siem-1"
    return Batch(
        destination_id="siem-1",
        account_id="acct-1",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, i, b"acct-1", b"") for i in range(max(events, 1))],
        events=[make_event() for _ in range(events)],
    )


def test_write_reports_the_body_it_posted() -> None:
    sent: list[httpx.Request] = []
    sink = make_sink(httpx.Response(202), sent)

    written = sink.write(make_batch(3))

    [request] = sent
    assert written == WriteResult(bytes_written=len(request.content), deliveries=1)
    assert written.bytes_written > 0


def test_write_without_events_reports_nothing_written() -> None:
    sent: list[httpx.Request] = []
    sink = make_sink(httpx.Response(200), sent)

    assert sink.write(make_batch(0)) == NOTHING_WRITTEN
    assert sent == []


@pytest.mark.parametrize(("body", "content"), [("json_array", b"[]"), ("ndjson", b"")])
def test_probe_posts_a_signed_empty_batch(body: str, content: bytes) -> None:
    sent: list[httpx.Request] = []
    sink = make_sink(httpx.Response(204), sent, body=body)

    result = sink.probe()

    assert result.ok, result
    assert result.cause is None
    assert result.message == (
        "destination siem-1 works: receiver siem.example.test accepted a signed empty batch (204)"
    )
    assert result.steps == [f"{DOING}: answered 204"]
    [request] = sent
    assert request.content == content
    assert request.headers[CHECK_HEADER] == "1"
    assert request.headers[IDEMPOTENCY_HEADER].startswith("siem-1:check:")
    assert request.headers[TIMESTAMP_HEADER] == str(int(NOW))
    assert verify(
        SECRET.encode(),
        request.headers[TIMESTAMP_HEADER],
        request.headers[SIGNATURE_HEADER],
        content,
        now=NOW,
    )


@dataclass(frozen=True)
class Refusal:
    answer: httpx.Response | Exception
    cause: str


REFUSALS = [
    Refusal(httpx.Response(401), "bad_credentials"),
    Refusal(httpx.Response(403), "access_denied"),
    Refusal(httpx.Response(404), "http_404"),
    Refusal(httpx.Response(503), "http_503"),
    Refusal(httpx.Response(302, headers={"Location": "https://elsewhere.test/"}), "redirect"),
    Refusal(httpx.ConnectError("Connection refused"), "unreachable"),
    Refusal(httpx.ReadTimeout("timed out"), "timeout"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.cause for r in REFUSALS])
def test_probe_names_the_refusal(refusal: Refusal) -> None:
    sent: list[httpx.Request] = []
    sink = make_sink(refusal.answer, sent)

    result = sink.probe()

    assert not result.ok
    assert result.cause == refusal.cause
    assert result.message.startswith(f"{DOING} failed: ")
    assert result.steps == [f"{DOING}: failed ({refusal.cause})"]
    assert len(sent) == 1  # once: a check does not retry
    assert SECRET not in result.message
    assert PATH_TOKEN not in result.message


def test_probe_applies_the_address_policy_before_sending() -> None:
    sent: list[httpx.Request] = []
    policy = AddressPolicy(resolver=lambda _host, _port: ["169.254.169.254"])
    sink = make_sink(httpx.Response(200), sent, policy=policy)

    result = sink.probe()

    assert not result.ok
    assert result.cause == "address_refused"
    assert sent == []
