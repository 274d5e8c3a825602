"""The Splunk HEC sink: settings, request building, HEC's answers, acknowledgements and the
destination check, against httpx's MockTransport."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from auditstream.config.destinations import STORED, SplunkHecDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.base import NOTHING_WRITTEN
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.http_batch import event_documents
from auditstream.sinks.splunk_hec import (
    CHANNEL_HEADER,
    CHECK_FIELD,
    HEC_CODES,
    HecAnswer,
    SplunkHecSink,
    classify_answer,
    envelope,
    envelope_fields,
    epoch_seconds,
    request_bodies,
)
from tests.factories import make_event

TOKEN = "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
URL = "https://splunk.example.com:8088"
NOW = 1_795_000_000.0
CHANNEL = "0b7f4d4e-1111-2222-3333-444455556666"


def destination(**overrides: Any) -> SplunkHecDestination:
    return SplunkHecDestination.model_validate(
        {"id": "hec-1", "url": URL, "token": TOKEN, **overrides}
    )


def make_batch(n: int, **event: Any) -> Batch:
    topic = "auditstream.dest.hec-1"
    return Batch(
        destination_id="hec-1",
        account_id="acme",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, i, b"acme", b"") for i in range(max(n, 1))],
        events=[make_event(**event) for _ in range(n)],
    )


def hec(status: int, code: int | None = None, **extra: Any) -> httpx.Response:
    payload: dict[str, Any] = {} if code is None else {"text": "t", "code": code}
    return httpx.Response(status, json={**payload, **extra})


@dataclass
class Script:
    """A MockTransport handler answering from a list (the last answer repeats)."""

    answers: list[httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]]
    sent: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        answer = self.answers[min(len(self.sent), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_sink(script: Script, time: FakeTime | None = None, **settings: Any) -> SplunkHecSink:
    fake = time or FakeTime()
    return SplunkHecSink(
        destination(**settings),
        httpx.Client(transport=httpx.MockTransport(script)),
        clock=lambda: NOW,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
        channel=CHANNEL,
    )


def hec_objects(body: bytes) -> list[dict[str, Any]]:
    """The concatenated JSON objects of a HEC body."""
    decoder, text, out, at = json.JSONDecoder(), body.decode(), [], 0
    while at < len(text):
        item, at = decoder.raw_decode(text, at)
        out.append(item)
    return out


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "https://splunk.example.com:8088/services/collector/event"}, "base URL"),
        ({"url": "https://splunk.example.com:8088/services/collector"}, "base URL"),
        ({"url": "https://splunk.example.com:8088/?token=x"}, "query"),
        ({"url": "https://user:pw@splunk.example.com"}, "credentials"),
        ({"url": "ftp://splunk.example.com"}, "url"),
        ({"token": "  "}, "token"),
        ({"token": f"Splunk {TOKEN}"}, "token"),
        ({"index": "_internal"}, "index"),
        ({"index": "Main"}, "index"),
        ({"index": "a" * 81}, "index"),
        ({"source": "a\nb"}, "source"),
        ({"sourcetype": "x\x00"}, "sourcetype"),
        ({"max_request_bytes": 1000}, "max_request_bytes"),
        ({"ack_timeout_s": 0}, "ack_timeout_s"),
    ],
)
def test_settings_refused_with_the_rule(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        destination(**overrides)


def test_settings_defaults_and_location() -> None:
    d = destination(index="audit")
    assert (d.source, d.sourcetype, d.host, d.gzip, d.ack, d.verify_tls) == (
        "auditstream",
        "auditstream:activity",
        None,
        True,
        False,
        True,
    )
    assert d.location() == "Splunk HEC at https://splunk.example.com:8088 (index audit)"


def test_stored_settings_keep_loading_under_newer_naming_rules() -> None:
    stored = SplunkHecDestination.model_validate(
        {"id": "hec-1", "url": URL, "token": TOKEN, "index": "Old_Index"}, context=STORED
    )
    assert stored.index == "Old_Index"


# -- request building ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC), "1795773600.123456"),
        (datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC), "1795773600.000000"),
        (datetime(2026, 11, 27, 10, 0, 0, 5), "1795773600.000005"),  # naive: UTC
        (datetime(1970, 1, 1, tzinfo=UTC), "0.000000"),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "-0.000001"),
        (datetime(2026, 11, 27, 11, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1))), None),
    ],
)
def test_epoch_seconds(when: datetime, expected: str | None) -> None:
    text = epoch_seconds(when)
    if expected is not None:
        assert text == expected
    assert float(text) == pytest.approx(when.replace(tzinfo=when.tzinfo or UTC).timestamp())


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"source": "auditstream", "sourcetype": "auditstream:activity"}),
        (
            {"host": "edge-1", "index": "audit", "source": "s", "sourcetype": "st"},
            {"host": "edge-1", "source": "s", "sourcetype": "st", "index": "audit"},
        ),
    ],
)
def test_envelope_carries_the_destination_metadata(
    settings: dict[str, Any], expected: dict[str, Any]
) -> None:
    event = make_event()
    (document,) = event_documents([event])
    item = json.loads(envelope(event, document, envelope_fields(destination(**settings))))
    assert item.pop("time") == pytest.approx(1795773600.123456)
    assert item.pop("event") == json.loads(document)
    assert item == expected


def test_envelope_without_a_datetime_leaves_time_to_splunk() -> None:
    event = make_event(occurred_at=None)
    event["occurred_at"] = "not a datetime"
    (document,) = event_documents([event])
    item = json.loads(envelope(event, document, envelope_fields(destination())))
    assert "time" not in item


@pytest.mark.parametrize(
    ("sizes", "limit", "requests"),
    [
        ([100, 100, 100], 1000, [3]),
        ([100, 100, 100], 200, [2, 1]),
        ([100, 100, 100], 199, [1, 1, 1]),
        ([50, 500, 50], 100, [1, 1, 1]),  # one envelope over the limit goes alone
        ([], 100, []),
    ],
)
def test_request_bodies_stay_within_the_limit(
    sizes: list[int], limit: int, requests: list[int]
) -> None:
    envelopes = [b"{" + b"x" * (size - 2) + b"}" for size in sizes]
    bodies = request_bodies(envelopes, limit)
    assert [len(b) for b in bodies] == [
        sum(sizes[sum(requests[:i]) : sum(requests[: i + 1])]) for i in range(len(requests))
    ]
    assert b"".join(bodies) == b"".join(envelopes)


# -- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCase:
    status: int
    code: int | None
    error: type[DeliveryError] | None
    cause: str | None = None
    retry_after: float | None = None
    headers: tuple[tuple[str, str], ...] = ()
    mentions: str = ""


ANSWER_CASES = [
    AnswerCase(200, 0, None),
    AnswerCase(200, 24, None),  # queue approaching capacity: accepted
    AnswerCase(200, None, None),
    AnswerCase(403, 1, PermanentError, "bad_credentials", mentions="Token disabled"),
    AnswerCase(401, 2, PermanentError, "bad_credentials", mentions="token"),
    AnswerCase(401, 3, PermanentError, "bad_credentials"),
    AnswerCase(403, 4, PermanentError, "bad_credentials", mentions="Invalid token"),
    AnswerCase(400, 6, PermanentError, "invalid_request", mentions="parsing_err"),
    AnswerCase(400, 7, PermanentError, "index_missing", mentions="allowed indexes"),
    AnswerCase(500, 8, TransientError, "unavailable"),
    AnswerCase(503, 9, TransientError, "throttled", 30.0, (("Retry-After", "30"),)),
    AnswerCase(400, 10, PermanentError, "invalid_config", mentions="ack to true"),
    AnswerCase(400, 14, PermanentError, "invalid_config", mentions="ack to false"),
    AnswerCase(503, 18, TransientError, "unavailable"),
    AnswerCase(400, 21, PermanentError, "bad_credentials"),
    AnswerCase(503, 23, TransientError, "unavailable"),
    AnswerCase(429, 26, TransientError, "throttled", 5.0, (("Retry-After", "5"),)),
    # Without a HEC code: a proxy or load balancer answered.
    AnswerCase(429, None, TransientError, "http_429", 12.0, (("Retry-After", "12"),)),
    AnswerCase(502, None, TransientError, "http_502"),
    AnswerCase(404, None, PermanentError, "invalid_url", mentions="base URL"),
    AnswerCase(413, None, PermanentError, "http_413", mentions="max_request_bytes"),
    AnswerCase(403, None, PermanentError, "bad_credentials"),
    AnswerCase(302, None, PermanentError, "redirect"),
]


@pytest.mark.parametrize("case", ANSWER_CASES, ids=lambda c: f"{c.status}-{c.code}")
def test_classify_answer(case: AnswerCase) -> None:
    error = classify_answer(
        case.status, dict(case.headers), HecAnswer(case.code), NOW, target="Splunk HEC h"
    )
    if case.error is None:
        assert error is None
        return
    assert type(error) is case.error
    assert error is not None
    assert error.cause == case.cause
    assert "Splunk HEC h" in str(error)
    assert case.mentions in str(error)
    if case.retry_after is not None:
        assert isinstance(error, TransientError)
        assert error.retry_after == case.retry_after


def test_every_code_but_success_is_in_the_table() -> None:
    assert set(HEC_CODES) == set(range(1, 28)) - {17, 24, 25}
    assert all(c.retryable == (c.cause in ("unavailable", "throttled")) for c in HEC_CODES.values())


def test_the_failing_event_is_named() -> None:
    error = classify_answer(400, {}, HecAnswer(7, invalid_event=3), NOW, target="Splunk HEC h")
    assert "event 3 of the request" in str(error)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"text":"Success","code":0,"ackId":7}', HecAnswer(0, ack_id=7)),
        (b'{"text":"Incorrect index","code":7,"invalid-event-number":2}', HecAnswer(7, None, 2)),
        (b'{"acks":{"0":true,"1":false}}', HecAnswer(None, acks={"0": True, "1": False})),
        (b'{"code":true}', HecAnswer(None)),
        (b"<html>", HecAnswer(None)),
    ],
)
def test_hec_answer_parse(content: bytes, expected: HecAnswer) -> None:
    assert HecAnswer.parse(content) == expected


# -- writing ---------------------------------------------------------------------------------------


def test_one_gzip_request_with_the_token() -> None:
    script = Script([hec(200, 0)])
    batch = make_batch(3)
    result = make_sink(script, index="audit").write(batch)
    (request,) = script.sent
    assert request.url == f"{URL}/services/collector/event"
    assert request.headers["Authorization"] == f"Splunk {TOKEN}"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert CHANNEL_HEADER not in request.headers
    items = hec_objects(gzip.decompress(request.content))
    assert [i["event"]["event_id"] for i in items] == [e["event_id"] for e in batch.events]
    assert {i["index"] for i in items} == {"audit"}
    assert result.deliveries == 1
    assert result.bytes_written == len(request.content)


def test_without_gzip_the_body_is_plain() -> None:
    script = Script([hec(200, 0)])
    make_sink(script, gzip=False).write(make_batch(2))
    assert "Content-Encoding" not in script.sent[0].headers
    assert len(hec_objects(script.sent[0].content)) == 2


def test_a_large_batch_takes_several_requests() -> None:
    script = Script([hec(200, 0)])
    big = {"details": {"blob": "x" * 30_000}}
    result = make_sink(script, max_request_bytes=64 * 1024).write(make_batch(10, **big))
    sizes = [len(gzip.decompress(r.content)) for r in script.sent]
    assert result.deliveries == len(script.sent) == 5
    assert all(s <= 64 * 1024 for s in sizes)
    ids = [
        i["event"]["event_id"] for r in script.sent for i in hec_objects(gzip.decompress(r.content))
    ]
    assert len(ids) == len(set(ids)) == 10


def test_a_refused_request_fails_the_whole_batch() -> None:
    script = Script([hec(200, 0), hec(503, 9)])
    sink = make_sink(script, max_request_bytes=64 * 1024)
    with pytest.raises(TransientError) as info:
        sink.write(make_batch(10, details={"blob": "x" * 30_000}))
    assert info.value.cause == "throttled"
    assert len(script.sent) == 2  # it stopped at the refusal


def test_batch_without_events_sends_nothing() -> None:
    script = Script([hec(200, 0)])
    assert make_sink(script).write(make_batch(0)) is NOTHING_WRITTEN
    assert script.sent == []


def test_secrets_stay_out_of_errors_and_repr() -> None:
    script = Script([hec(403, 4)])
    sink = make_sink(script)
    with pytest.raises(PermanentError) as info:
        sink.write(make_batch(1))
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(sink)


# -- indexer acknowledgement -----------------------------------------------------------------------


def acks(*pairs: tuple[int, bool]) -> httpx.Response:
    return httpx.Response(200, json={"acks": {str(i): ok for i, ok in pairs}})


def test_ack_waits_until_every_request_is_indexed() -> None:
    script = Script([hec(200, 0, ackId=4), acks((4, False)), acks((4, False)), acks((4, True))])
    fake = FakeTime()
    result = make_sink(script, fake, ack=True).write(make_batch(2))
    assert result.deliveries == 1
    event_post, *polls = script.sent
    assert event_post.headers[CHANNEL_HEADER] == CHANNEL
    assert [p.url.path for p in polls] == ["/services/collector/ack"] * 3
    assert all(p.headers[CHANNEL_HEADER] == CHANNEL for p in polls)
    assert json.loads(polls[0].content) == {"acks": [4]}
    assert fake.sleeps == [0.1, 0.2]


def test_ack_of_several_requests() -> None:
    script = Script(
        [hec(200, 0, ackId=0), hec(200, 0, ackId=1), acks((0, True), (1, False)), acks((1, True))]
    )
    sink = make_sink(script, ack=True, max_request_bytes=64 * 1024)
    sink.write(make_batch(2, details={"blob": "x" * 40_000}))
    assert [json.loads(r.content) for r in script.sent[2:]] == [{"acks": [0, 1]}, {"acks": [1]}]


def test_ack_that_does_not_come_is_a_transient_timeout() -> None:
    script = Script([hec(200, 0, ackId=0), acks((0, False))])
    fake = FakeTime()
    with pytest.raises(TransientError, match="did not confirm") as info:
        make_sink(script, fake, ack=True, ack_timeout_s=5).write(make_batch(1))
    assert info.value.cause == "timeout"
    assert fake.now == pytest.approx(5.0)
    assert max(fake.sleeps) <= 2.0


def test_ack_without_an_ack_id_is_a_configuration_error() -> None:
    script = Script([hec(200, 0)])
    with pytest.raises(PermanentError, match="acknowledgement off") as info:
        make_sink(script, ack=True).write(make_batch(1))
    assert info.value.cause == "invalid_config"


def test_ack_poll_that_fails_fails_the_batch() -> None:
    script = Script([hec(200, 0, ackId=0), hec(503, 9)])
    with pytest.raises(TransientError):
        make_sink(script, ack=True).write(make_batch(1))


# -- the destination check -------------------------------------------------------------------------


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


@dataclass(frozen=True)
class ProbeCase:
    name: str
    answers: list[Any]
    settings: dict[str, Any]
    cause: str | None
    requests: int


PROBE_CASES = [
    ProbeCase("healthy", [hec(200, 17), hec(400, 5)], {}, None, 2),
    ProbeCase("unreachable", [refused], {}, "unreachable", 1),
    ProbeCase("invalid token on health", [hec(400, 21)], {}, "bad_credentials", 1),
    ProbeCase("invalid token on post", [hec(200, 17), hec(403, 4)], {}, "bad_credentials", 2),
    ProbeCase("unhealthy", [hec(503, 18)], {}, "unavailable", 1),
    ProbeCase("proxy without health", [hec(404), hec(400, 5)], {}, None, 2),
    ProbeCase("nothing there", [hec(404), hec(404)], {}, "invalid_url", 2),
    ProbeCase(
        "index missing",
        [hec(200, 17), hec(400, 5), hec(400, 7, **{"invalid-event-number": 0})],
        {"index": "audit"},
        "index_missing",
        3,
    ),
    ProbeCase("index ok", [hec(200, 17), hec(400, 5), hec(200, 0)], {"index": "audit"}, None, 3),
    ProbeCase("token wants ack", [hec(200, 17), hec(400, 10)], {}, "invalid_config", 2),
    ProbeCase(
        "ack off on token",
        [hec(200, 17), hec(400, 5), hec(400, 14)],
        {"ack": True},
        "invalid_config",
        3,
    ),
    ProbeCase(
        "ack on",
        [hec(200, 17), hec(400, 5), httpx.Response(200, json={"acks": {}})],
        {"ack": True},
        None,
        3,
    ),
]


@pytest.mark.parametrize("case", PROBE_CASES, ids=lambda c: c.name)
def test_probe_names_one_cause(case: ProbeCase) -> None:
    script = Script(case.answers)
    result = make_sink(script, **case.settings).probe()
    assert result.ok is (case.cause is None), result.message
    assert result.cause == case.cause
    assert len(script.sent) == case.requests
    assert TOKEN not in result.message
    assert result.steps


def test_probe_sends_no_event_without_an_index() -> None:
    script = Script([hec(200, 17), hec(400, 5)])
    make_sink(script).probe()
    health, token_check = script.sent
    assert (health.method, health.url.path) == ("GET", "/services/collector/health")
    assert health.headers["Authorization"] == f"Splunk {TOKEN}"
    assert (token_check.method, token_check.content) == ("POST", b"")


def test_probe_marks_its_one_index_event() -> None:
    script = Script([hec(200, 17), hec(400, 5), hec(200, 0)])
    make_sink(script, index="audit").probe()
    (item,) = hec_objects(gzip.decompress(script.sent[2].content))
    assert item["index"] == "audit"
    assert item["event"][CHECK_FIELD] is True
    assert item["time"] == pytest.approx(NOW)


def test_is_retryable() -> None:
    sink = make_sink(Script([hec(200, 0)]))
    assert sink.is_retryable(TransientError("x"))
    assert not sink.is_retryable(PermanentError("x"))
    assert not sink.is_retryable(ValueError("x"))


def test_close_leaves_a_given_client_open() -> None:
    client = httpx.Client(transport=httpx.MockTransport(Script([hec(200, 0)])))
    SplunkHecSink(destination(), client).close()
    assert not client.is_closed


@pytest.mark.parametrize("token", ["tök-1234", "abc\n", "abc\x00"])
def test_tokens_that_cannot_be_sent_are_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        SplunkHecDestination.model_validate(
            {"type": "splunk_hec", "id": "s1", "url": "https://splunk.example.com", "token": token}
        )
