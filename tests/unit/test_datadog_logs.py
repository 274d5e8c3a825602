"""The Datadog Logs sink: settings, log building (tags, timestamps, truncation, late events),
the intake's limits, answers and the destination check, against httpx's MockTransport."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from auditstream.config.destinations import DATADOG_SITES, STORED, DatadogLogsDestination
from auditstream.pipeline.log import Record
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.base import NOTHING_WRITTEN
from auditstream.sinks.batch import Batch
from auditstream.sinks.datadog_logs import (
    API_KEY_HEADER,
    CHECK_TAG,
    MARKER,
    MAX_AGE_S,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    MAX_PAYLOAD_BYTES,
    DatadogLogsSink,
    Entry,
    LogSettings,
    LogsWriteResult,
    SiteUrls,
    _fitting_text,
    classify_answer,
    ddtags,
    destination_urls,
    epoch_millis,
    log_entry,
    payloads,
    site_urls,
    summary,
)
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.http_batch import event_documents
from tests.factories import make_event

KEY = "0123456789abcdef0123456789abcdef"
OCCURRED = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
NOW = OCCURRED.timestamp() + 60
SETTINGS = LogSettings("auditstream", "auditstream", None, "")


def destination(**overrides: Any) -> DatadogLogsDestination:
    return DatadogLogsDestination.model_validate({"id": "dd-1", "api_key": KEY, **overrides})


def make_batch(n: int, **event: Any) -> Batch:
    topic = "auditstream.dest.dd-1"
    return Batch(
        destination_id="dd-1",
        account_id="acme",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, i, b"acme", b"") for i in range(max(n, 1))],
        events=[make_event(**event) for _ in range(n)],
    )


@dataclass
class Script:
    """A MockTransport handler answering by URL host (the last answer for a host repeats)."""

    answers: dict[str, list[httpx.Response | Callable[[httpx.Request], httpx.Response]]]
    sent: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        mine = self.answers[request.url.host]
        count = sum(1 for r in self.sent if r.url.host == request.url.host)
        answer = mine[min(count, len(mine)) - 1]
        return answer if isinstance(answer, httpx.Response) else answer(request)


def test_site_urls() -> None:
    assert site_urls("datadoghq.eu") == SiteUrls(
        "https://http-intake.logs.datadoghq.eu", "https://api.datadoghq.eu"
    )


def local_sites(site: str) -> SiteUrls:
    """Each site's origins as distinct hosts a MockTransport tells apart."""
    return SiteUrls(f"https://intake.{site}", f"https://api.{site}")


def make_sink(script: Script, now: float = NOW, **settings: Any) -> DatadogLogsSink:
    return DatadogLogsSink(
        destination(**settings),
        httpx.Client(transport=httpx.MockTransport(script)),
        clock=lambda: now,
        urls_of_site=local_sites,
    )


def sent_logs(request: httpx.Request) -> list[dict[str, Any]]:
    body = request.content
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    parsed: list[dict[str, Any]] = json.loads(body)
    return parsed


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"site": "datadoghq.org"}, "site"),
        ({"api_key": "has spaces in it 0123456789"}, "api_key"),
        ({"api_key": "short"}, "api_key"),
        ({"tags": "env:prod,,team:x"}, "tags"),
        ({"tags": "env prod"}, "tags"),
        ({"tags": "a:" + "x" * 200}, "tags"),
        ({"service": "a\nb"}, "service"),
        ({"endpoint": "https://proxy.example.com/?k=1"}, "query"),
        ({"endpoint": "proxy.example.com"}, "endpoint"),
    ],
)
def test_settings_refused_with_the_rule(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        destination(**overrides)


def test_every_documented_site_is_accepted() -> None:
    for site in DATADOG_SITES:
        assert destination(site=site).location() == f"Datadog Logs ({site})"
    assert "us3.datadoghq.com" in DATADOG_SITES
    assert "ddog-gov.com" in DATADOG_SITES


def test_endpoint_replaces_both_origins() -> None:
    d = destination(endpoint="https://dd-proxy.example.com/dd")
    assert destination_urls(d) == SiteUrls(
        "https://dd-proxy.example.com/dd", "https://dd-proxy.example.com/dd"
    )
    assert d.location() == "Datadog Logs at https://dd-proxy.example.com"


def test_stored_settings_keep_loading_under_newer_rules() -> None:
    stored = DatadogLogsDestination.model_validate(
        {"id": "dd-1", "api_key": "old key", "tags": "a b"}, context=STORED
    )
    assert stored.tags == "a b"


# -- building logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (OCCURRED, 1795773600123),
        (datetime(2026, 11, 27, 10, 0, 0, 999), 1795773600000),  # naive: UTC
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        ("2026-11-27T10:00:00Z", None),
        (None, None),
    ],
)
def test_epoch_millis(value: object, expected: int | None) -> None:
    assert epoch_millis(value) == expected


@pytest.mark.parametrize(
    ("event", "extra", "expected"),
    [
        ({"account_id": "acme", "category": "team"}, "", "account_id:acme,category:team"),
        (
            {"account_id": "acme", "category": "team"},
            "env:prod,team:sec",
            "account_id:acme,category:team,env:prod,team:sec",
        ),
        ({"account_id": "a,b c", "category": "x"}, "", "account_id:a_b_c,category:x"),
        ({"account_id": "a" * 300, "category": "x"}, "", f"account_id:{'a' * 200},category:x"),
    ],
)
def test_ddtags(event: dict[str, Any], extra: str, expected: str) -> None:
    assert ddtags(event, extra) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(), "user_login (account): success"),
        (make_event(outcome=None), "user_login (account)"),
        (make_event(activity="role_changed", category="team"), "role_changed (team): success"),
    ],
)
def test_summary_has_no_personal_data(event: dict[str, Any], expected: str) -> None:
    assert summary(event) == expected


def entry_of(
    event: dict[str, Any], now: float = NOW, **kwargs: Any
) -> tuple[Entry, dict[str, Any]]:
    (document,) = event_documents([event])
    entry = log_entry(event, document, SETTINGS, now, **kwargs)
    parsed: dict[str, Any] = json.loads(entry.body)
    return entry, parsed


def test_a_log_is_the_reserved_attributes_then_the_event() -> None:
    event = make_event()
    entry, log = entry_of(event)
    assert (entry.truncated, entry.late, entry.event_id) == (False, False, event["event_id"])
    assert log["ddsource"] == "auditstream"
    assert log["service"] == "auditstream"
    assert log["ddtags"] == "account_id:acme,category:account"
    assert log["timestamp"] == 1795773600123
    assert "hostname" not in log
    assert MARKER not in log
    (document,) = event_documents([event])
    assert {k: v for k, v in log.items() if k in event} == json.loads(document)


def test_the_hostname_when_set() -> None:
    event = make_event()
    (document,) = event_documents([event])
    settings = LogSettings("src", "svc", "edge-1", "env:x")
    log = json.loads(log_entry(event, document, settings, NOW).body)
    assert (log["ddsource"], log["service"], log["hostname"]) == ("src", "svc", "edge-1")
    assert log["ddtags"].endswith(",env:x")


def test_reserved_attributes_never_collide_with_event_fields() -> None:
    reserved = {"ddsource", "ddtags", "service", "hostname", "message", "timestamp", MARKER}
    assert not reserved & set(ActivityEvent.__annotations__)


@pytest.mark.parametrize(
    ("age", "late"),
    [
        (timedelta(hours=17, minutes=59), False),
        (timedelta(hours=18, seconds=1), True),
        (timedelta(days=6), True),
        (timedelta(minutes=-5), False),
    ],
)
def test_an_event_older_than_18_hours_is_sent_dated_at_arrival(age: timedelta, late: bool) -> None:
    event = make_event()
    now = OCCURRED.timestamp() + age.total_seconds()
    entry, log = entry_of(event, now)
    assert entry.late is late
    assert ("timestamp" in log) is not late
    assert log.get(MARKER) == ({"late": True} if late else None)
    assert log["occurred_at"] == "2026-11-27T10:00:00.123456Z"  # kept either way


@pytest.mark.parametrize("limit", [2_000, 10_000, MAX_ENTRY_BYTES])
def test_a_log_over_the_limit_is_truncated_with_a_marker(limit: int) -> None:
    event = make_event(details={"blob": 'é"\\' * (limit // 2)})
    entry, log = entry_of(event, limit=limit)
    assert entry.truncated
    assert len(entry.body) <= limit
    assert len(entry.body) > limit - 20  # it uses the room it has
    assert log[MARKER]["truncated"] is True
    assert log[MARKER]["original_bytes"] > limit
    assert log["event_id"] == event["event_id"]
    assert log["account_id"] == "acme"
    assert log["timestamp"] == 1795773600123
    (document,) = event_documents([event])
    assert document.decode().startswith(log["message"])
    assert "actor" not in log  # the rest of the event is in the message, cut


def test_a_late_log_over_the_limit_keeps_both_marks() -> None:
    event = make_event(details={"blob": "x" * 5_000})
    entry, log = entry_of(event, NOW + MAX_AGE_S, limit=2_000)
    assert (entry.truncated, entry.late) == (True, True)
    assert log[MARKER]["late"] is True
    assert log[MARKER]["truncated"] is True
    assert "timestamp" not in log


@pytest.mark.parametrize(
    ("text", "budget", "expected"),
    [
        ("abcdef", 8, "abcdef"),
        ("abcdef", 5, "abc"),
        ('a"b"c', 6, 'a"b'),  # "a\"b" takes 6 bytes, "a\"b\"" 8
        ("ééé", 6, "éé"),
        ("abc", 2, ""),
        ("abc", 1, ""),  # not even the quotes: the caller's budget is wrong, nothing is kept
    ],
)
def test_fitting_text(text: str, budget: int, expected: str) -> None:
    fitted = _fitting_text(text, budget)
    assert len(json.dumps(fitted, ensure_ascii=False).encode()) <= max(budget, 2)
    assert text.startswith(fitted)
    assert fitted == expected


def entries(sizes: list[int]) -> list[Entry]:
    return [Entry(b"{" + b"x" * (s - 2) + b"}", str(i)) for i, s in enumerate(sizes)]


@pytest.mark.parametrize(
    ("count", "size", "expected"),
    [
        (1, 100, [1]),
        (MAX_ENTRIES, 100, [MAX_ENTRIES]),
        (MAX_ENTRIES + 1, 100, [MAX_ENTRIES, 1]),
        (2_500, 100, [1000, 1000, 500]),
        # 5 MB: [ + 5 x 999,999 + 4 commas + ] = 5,000,001 bytes: one too many.
        (5, 999_999, [4, 1]),
        (5, 999_998, [5]),
    ],
)
def test_payloads_stay_within_the_intake_limits(count: int, size: int, expected: list[int]) -> None:
    bodies = payloads(entries([size] * count))
    parsed = [json.loads(b.replace(b"x", b"")) for b in bodies]
    assert [len(p) for p in parsed] == expected
    assert all(len(b) <= MAX_PAYLOAD_BYTES for b in bodies)


# -- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCase:
    status: int
    error: type[DeliveryError] | None
    cause: str | None = None
    retry_after: float | None = None
    mentions: str = ""


ANSWER_CASES = [
    AnswerCase(202, None),
    AnswerCase(200, None),
    AnswerCase(400, PermanentError, "invalid_request"),
    AnswerCase(401, PermanentError, "bad_credentials", mentions="api_key"),
    AnswerCase(403, PermanentError, "bad_credentials", mentions="site"),
    AnswerCase(404, PermanentError, "invalid_url", mentions="endpoint"),
    AnswerCase(413, PermanentError, "http_413"),
    AnswerCase(408, TransientError, "http_408"),
    AnswerCase(429, TransientError, "http_429", 3.0),
    AnswerCase(500, TransientError, "http_500"),
    AnswerCase(503, TransientError, "http_503", 3.0),
]


@pytest.mark.parametrize("case", ANSWER_CASES, ids=lambda c: str(c.status))
def test_classify_answer(case: AnswerCase) -> None:
    headers = {"Retry-After": "3"} if case.retry_after else {}
    error = classify_answer(case.status, headers, NOW, target="Datadog Logs intake h")
    if case.error is None:
        assert error is None
        return
    assert type(error) is case.error
    assert error is not None
    assert error.cause == case.cause
    assert case.mentions in str(error)
    if case.retry_after is not None:
        assert isinstance(error, TransientError)
        assert error.retry_after == case.retry_after


# -- writing ---------------------------------------------------------------------------------------

INTAKE = "intake.datadoghq.com"
API = "api.datadoghq.com"


def test_one_gzip_request_with_the_key() -> None:
    script = Script({INTAKE: [httpx.Response(202, json={})]})
    batch = make_batch(3, occurred_at=OCCURRED)
    result = make_sink(script).write(batch)
    (request,) = script.sent
    assert request.url == f"https://{INTAKE}/api/v2/logs"
    assert request.headers[API_KEY_HEADER] == KEY
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert [log["event_id"] for log in sent_logs(request)] == [e["event_id"] for e in batch.events]
    assert isinstance(result, LogsWriteResult)
    assert (result.deliveries, result.bytes_written) == (1, len(request.content))
    assert (result.truncated_event_ids, result.late_event_ids) == ((), ())


def test_without_gzip_the_body_is_plain() -> None:
    script = Script({INTAKE: [httpx.Response(202)]})
    make_sink(script, gzip=False).write(make_batch(2))
    assert "Content-Encoding" not in script.sent[0].headers
    assert len(json.loads(script.sent[0].content)) == 2


def test_a_batch_over_1000_events_takes_two_requests() -> None:
    script = Script({INTAKE: [httpx.Response(202)]})
    result = make_sink(script).write(make_batch(1_500, occurred_at=OCCURRED))
    assert [len(sent_logs(r)) for r in script.sent] == [1000, 500]
    assert result.deliveries == 2


def test_a_refused_request_fails_the_whole_batch() -> None:
    script = Script({INTAKE: [httpx.Response(202), httpx.Response(503)]})
    with pytest.raises(TransientError):
        make_sink(script).write(make_batch(2_500, occurred_at=OCCURRED))
    assert len(script.sent) == 2  # stopped at the refusal; a retry sends all three again


def test_truncated_and_late_events_are_counted_named_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script({INTAKE: [httpx.Response(202)]})
    batch = make_batch(3, occurred_at=OCCURRED)
    batch.events[0]["details"] = {"blob": "x" * (MAX_ENTRY_BYTES + 10)}
    batch.events[2]["occurred_at"] = OCCURRED - timedelta(days=2)
    with caplog.at_level(logging.WARNING, logger="auditstream.sinks.datadog_logs"):
        result = make_sink(script).write(batch)
    assert isinstance(result, LogsWriteResult)
    assert result.truncated_event_ids == (batch.events[0]["event_id"],)
    assert result.late_event_ids == (batch.events[2]["event_id"],)
    text = caplog.text
    assert batch.events[0]["event_id"] in text
    assert batch.events[2]["event_id"] in text
    assert "truncated" in text
    assert "18 hours" in text
    logs = sent_logs(script.sent[0])
    assert len(logs) == 3  # nothing dropped


def test_batch_without_events_sends_nothing() -> None:
    script = Script({INTAKE: [httpx.Response(202)]})
    assert make_sink(script).write(make_batch(0)) is NOTHING_WRITTEN
    assert script.sent == []


def test_the_key_stays_out_of_errors_and_repr() -> None:
    script = Script({INTAKE: [httpx.Response(403, json={"errors": ["Forbidden"]})]})
    sink = make_sink(script)
    with pytest.raises(PermanentError) as info:
        sink.write(make_batch(1))
    assert KEY not in str(info.value)
    assert KEY not in repr(sink)


# -- the destination check -------------------------------------------------------------------------


def valid(ok: bool) -> httpx.Response:
    if ok:
        return httpx.Response(200, json={"valid": True})
    return httpx.Response(403, json={"errors": ["Forbidden"]})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def other_sites(valid_on: str | None) -> dict[str, list[Any]]:
    return {
        f"api.{site}": [valid(site == valid_on)]
        for site in DATADOG_SITES
        if site != "datadoghq.com"
    }


def test_probe_validates_the_key_then_sends_one_marked_log() -> None:
    script = Script({API: [valid(True)], INTAKE: [httpx.Response(202)]})
    result = make_sink(script).probe()
    assert result.ok, result.message
    validate, check = script.sent
    assert (validate.method, validate.url.path) == ("GET", "/api/v1/validate")
    assert validate.headers[API_KEY_HEADER] == KEY
    (log,) = sent_logs(check)
    assert CHECK_TAG in log["ddtags"].split(",")
    assert log[MARKER] == {"check": True}


def test_probe_names_the_site_a_key_belongs_to() -> None:
    script = Script({API: [valid(False)], **other_sites("datadoghq.eu")})
    result = make_sink(script).probe()
    assert (result.ok, result.cause) == (False, "region_mismatch")
    assert "set the destination's site to datadoghq.eu" in result.message
    assert KEY not in result.message
    assert all(r.url.host != INTAKE for r in script.sent)


def test_probe_of_a_key_no_site_knows_is_bad_credentials() -> None:
    script = Script({API: [valid(False)], **other_sites(None)})
    result = make_sink(script).probe()
    assert (result.ok, result.cause) == (False, "bad_credentials")
    assert len(script.sent) == len(DATADOG_SITES)


def test_probe_with_an_endpoint_asks_no_other_site() -> None:
    proxy = "dd-proxy.example.com"
    script = Script({proxy: [valid(False)]})
    result = make_sink(script, endpoint=f"https://{proxy}").probe()
    assert (result.ok, result.cause) == (False, "bad_credentials")
    assert len(script.sent) == 1


def test_probe_through_a_proxy_without_key_validation_sends_the_check_log() -> None:
    proxy = "dd-proxy.example.com"
    script = Script({proxy: [httpx.Response(404), httpx.Response(202)]})
    result = make_sink(script, endpoint=f"https://{proxy}").probe()
    assert result.ok, result.message
    assert [r.url.path for r in script.sent] == ["/api/v1/validate", "/api/v2/logs"]


@pytest.mark.parametrize(
    ("answers", "cause"),
    [
        ({API: [refused]}, "unreachable"),
        ({API: [valid(True)], INTAKE: [refused]}, "unreachable"),
        ({API: [valid(True)], INTAKE: [httpx.Response(503)]}, "http_503"),
        (
            {API: [httpx.Response(200, json={"valid": False})], **other_sites(None)},
            "bad_credentials",
        ),
    ],
)
def test_probe_failures_name_one_cause(answers: dict[str, list[Any]], cause: str) -> None:
    result = make_sink(Script(answers)).probe()
    assert (result.ok, result.cause) == (False, cause)
    assert result.steps


def test_is_retryable_and_close() -> None:
    client = httpx.Client(transport=httpx.MockTransport(Script({})))
    sink = DatadogLogsSink(destination(), client)
    assert sink.is_retryable(TransientError("x"))
    assert not sink.is_retryable(PermanentError("x"))
    sink.close()
    assert not client.is_closed


def test_an_api_key_with_a_trailing_line_break_is_refused() -> None:
    with pytest.raises(ValidationError):
        DatadogLogsDestination.model_validate(
            {"type": "datadog_logs", "id": "d1", "api_key": "0123456789abcdef0123456789abcdef\n"}
        )
