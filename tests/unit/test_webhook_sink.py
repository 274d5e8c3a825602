"""The webhook sink against httpx's MockTransport: requests, signatures, outcome mapping."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

import auditstream
from auditstream.config.destinations import WebhookDestination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.retry import RetryPolicy, call, parse_retry_after
from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from auditstream.sinks.webhook import (
    DESTINATION_HEADER,
    WebhookSink,
    classify_exception,
    classify_response,
)

SECRET = "whsec-Unit-Test-Secret-4f9a"
HEADER_TOKEN = "Bearer hec-token-8d1e"
PATH_TOKEN = "collector-token-77c2"
SIGNED_AT = 1_795_000_000
NOW = SIGNED_AT + 0.75  # the sink signs with whole seconds
URL = f"https://siem.example.test/receiver/{PATH_TOKEN}?tenant=acme"

# -- builders -----------------------------------------------------------------------------------


def make_event(account_id: str = "acct-1", second: int = 0) -> dict[str, Any]:
    occurred = datetime(2026, 11, 27, 10, 0, second, 123456, tzinfo=UTC)
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(milliseconds=250),
        "account_id": account_id,
        "category": "account",
        "activity": "user_login",
        "actor": {
            "user_id": "user-42",
            "name": "Ada Lovelace",
            "email": "ada@example.test",
            "role": "admin",
            "auth_method": "password",
        },
        "resource": None,
        "outcome": {"status": "success", "reason": None},
        "changes": [],
        "request": None,
        "details": {},
    }


def make_batch(n: int = 3, *, partition: int = 2, first_offset: int = 40) -> Batch:
    topic = "auditstream.dest.siem-1"
    records = [Record(topic, partition, first_offset + i, b"acct-1", b"") for i in range(n)]
    return Batch(
        destination_id="siem-1",
        account_id="acct-1",
        topic=topic,
        partition=partition,
        records=records,
        events=[make_event(second=i) for i in range(n)],
    )


def make_destination(**overrides: Any) -> WebhookDestination:
    settings: dict[str, Any] = {
        "id": "siem-1",
        "url": URL,
        "secret": SECRET,
        "headers": {"Authorization": HEADER_TOKEN, "X-Tenant": "acme"},
    }
    settings.update(overrides)
    return WebhookDestination.model_validate(settings)


@dataclass
class Receiver:
    """A MockTransport handler that records requests and answers from a script."""

    answers: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else httpx.Response(200)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_sink(
    receiver: Receiver, destination: WebhookDestination | None = None
) -> tuple[WebhookSink, httpx.Client]:
    client = httpx.Client(transport=httpx.MockTransport(receiver))
    sink = WebhookSink(destination or make_destination(), client=client, clock=lambda: NOW)
    return sink, client


def secrets_absent(text: str) -> bool:
    return all(s not in text for s in (SECRET, HEADER_TOKEN, "hec-token", PATH_TOKEN, "tenant"))


# -- requests -----------------------------------------------------------------------------------


def test_one_post_with_signed_headers() -> None:
    receiver = Receiver()
    sink, _ = make_sink(receiver)

    sink.write(make_batch())

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST"
    assert str(request.url) == URL
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"auditstream/{auditstream.__version__}"
    assert headers[TIMESTAMP_HEADER] == str(SIGNED_AT)
    assert headers[IDEMPOTENCY_HEADER] == "siem-1:2:40-42"
    assert headers[DESTINATION_HEADER] == "siem-1"
    assert headers["Authorization"] == HEADER_TOKEN
    assert headers["X-Tenant"] == "acme"
    assert headers["Content-Length"] == str(len(request.content))
    assert verify(
        SECRET.encode(),
        headers[TIMESTAMP_HEADER],
        headers[SIGNATURE_HEADER],
        request.content,
        now=NOW,
    )
    assert not verify(
        SECRET.encode(),
        headers[TIMESTAMP_HEADER],
        headers[SIGNATURE_HEADER],
        request.content + b" ",
        now=NOW,
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("json_array", "application/json"), ("ndjson", "application/x-ndjson")],
)
def test_body_formats(body: str, content_type: str) -> None:
    receiver = Receiver()
    sink, _ = make_sink(receiver, make_destination(body=body))
    batch = make_batch(4)

    sink.write(batch)

    request = receiver.requests[0]
    assert request.headers["Content-Type"] == content_type
    if body == "ndjson":
        assert request.content.endswith(b"\n")
        lines = request.content.split(b"\n")[:-1]
        parsed = [json.loads(line) for line in lines]
    else:
        assert request.content.startswith(b"[")
        parsed = json.loads(request.content)
    assert [e["event_id"] for e in parsed] == [str(e["event_id"]) for e in batch.events]
    assert parsed[0]["occurred_at"] == "2026-11-27T10:00:00.123456Z"
    assert parsed[0]["actor"]["auth_method"] == "password"
    assert parsed[0]["resource"] is None


def test_retry_of_a_batch_keeps_its_idempotency_key() -> None:
    receiver = Receiver()
    times = iter([NOW, NOW, NOW + 7, NOW + 7])
    client = httpx.Client(transport=httpx.MockTransport(receiver))
    sink = WebhookSink(make_destination(), client=client, clock=lambda: next(times))
    batch = make_batch()

    sink.write(batch)
    sink.write(batch)

    first, second = receiver.requests
    assert first.headers[IDEMPOTENCY_HEADER] == second.headers[IDEMPOTENCY_HEADER]
    assert first.content == second.content
    assert int(second.headers[TIMESTAMP_HEADER]) == int(first.headers[TIMESTAMP_HEADER]) + 7
    assert first.headers[SIGNATURE_HEADER] != second.headers[SIGNATURE_HEADER]


def test_batch_without_events_sends_nothing() -> None:
    receiver = Receiver()
    sink, _ = make_sink(receiver)
    batch = make_batch()
    batch.events.clear()

    sink.write(batch)

    assert receiver.requests == []


@pytest.mark.parametrize("name", ["Content-Type", "x-auditstream-signature", "Idempotency-Key"])
def test_destination_headers_may_not_override_protocol_headers(name: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        WebhookSink(make_destination(headers={name: "sneaky-value"}), client=httpx.Client())
    assert "sneaky-value" not in str(info.value)


# -- outcome mapping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCase:
    status: int
    error: type[DeliveryError] | None
    cause: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    hint: str | None = None


def http_date(seconds_after_signing: int) -> str:
    """An HTTP-date (whole seconds) ``seconds_after_signing`` after ``SIGNED_AT``; it lies
    ``seconds_after_signing - 0.75`` seconds after ``NOW``."""
    moment = datetime.fromtimestamp(SIGNED_AT + seconds_after_signing, tz=UTC)
    return format_datetime(moment, usegmt=True)


STATUS_CASES = [
    StatusCase(200, None),
    StatusCase(202, None),
    StatusCase(204, None),
    StatusCase(400, PermanentError, "http_400", hint="body format"),
    StatusCase(401, PermanentError, "http_401", hint="credentials"),
    StatusCase(403, PermanentError, "http_403", hint="credentials"),
    StatusCase(404, PermanentError, "http_404", hint="URL"),
    StatusCase(408, TransientError, "http_408"),
    StatusCase(409, PermanentError, "http_409", hint="receiver's logs"),
    StatusCase(413, PermanentError, "http_413", hint="batch.max_bytes"),
    StatusCase(422, PermanentError, "http_422"),
    StatusCase(429, TransientError, "http_429", {"Retry-After": "30"}, 30.0),
    StatusCase(429, TransientError, "http_429", {"retry-after": http_date(121)}, 120.25),
    StatusCase(429, TransientError, "http_429"),
    StatusCase(500, TransientError, "http_500"),
    StatusCase(502, TransientError, "http_502"),
    StatusCase(503, TransientError, "http_503", {"Retry-After": "0.2"}, 0.2),
    StatusCase(503, TransientError, "http_503", {"Retry-After": http_date(-60)}, 0.0),
    StatusCase(503, TransientError, "http_503", {"Retry-After": "whenever"}, None),
    StatusCase(504, TransientError, "http_504"),
    StatusCase(
        302,
        PermanentError,
        "redirect",
        {"Location": f"https://other.example.test/x/{PATH_TOKEN}?tenant=acme"},
        hint="other.example.test",
    ),
    StatusCase(307, PermanentError, "redirect", {"Location": "/relative/path"}),
]


def status_id(case: StatusCase) -> str:
    return f"{case.status}-{','.join(f'{k}={v}' for k, v in case.headers.items()) or 'plain'}"


def check_status_error(case: StatusCase, error: BaseException | None) -> None:
    if case.error is None:
        assert error is None
        return
    assert type(error) is case.error
    assert isinstance(error, DeliveryError)
    assert error.cause == case.cause
    if isinstance(error, TransientError):
        assert error.retry_after == pytest.approx(case.retry_after)
    message = str(error)
    assert str(case.status) in message
    if case.hint is not None:
        assert case.hint in message
    assert secrets_absent(message)
    assert "/x/" not in message
    assert "/relative/path" not in message


@pytest.mark.parametrize("case", STATUS_CASES, ids=[status_id(c) for c in STATUS_CASES])
def test_classify_response(case: StatusCase) -> None:
    check_status_error(case, classify_response(case.status, case.headers, NOW))


@pytest.mark.parametrize("case", STATUS_CASES, ids=[status_id(c) for c in STATUS_CASES])
def test_write_maps_status(case: StatusCase) -> None:
    receiver = Receiver(answers=[httpx.Response(case.status, headers=dict(case.headers))])
    sink, _ = make_sink(receiver)

    error: BaseException | None = None
    try:
        sink.write(make_batch())
    except DeliveryError as exc:
        error = exc

    assert len(receiver.requests) == 1
    check_status_error(case, error)
    if error is not None:
        assert "siem.example.test" in str(error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("-3", None),
        ("1e3", None),
        ("inf", None),
        ("soon", None),
        (http_date(45), 44.25),
        (http_date(-3600), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),
        ("Mon, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(expected)


def _request() -> httpx.Request:
    return httpx.Request("POST", URL)


def chained(outer: httpx.HTTPError, inner: BaseException) -> httpx.HTTPError:
    """``outer`` raised from ``inner``, as httpx raises its exceptions from httpcore's."""
    try:
        try:
            raise inner
        except BaseException as low:
            raise outer from low
    except httpx.HTTPError as exc:
        return exc


def cert_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    error.verify_message = "self-signed certificate"
    return error


@dataclass(frozen=True)
class ExceptionCase:
    name: str
    make: Callable[[], httpx.HTTPError]
    error: type[DeliveryError]
    cause: str
    mentions: str | None = None


EXCEPTION_CASES = [
    ExceptionCase(
        "connect timeout",
        lambda: httpx.ConnectTimeout("timed out", request=_request()),
        TransientError,
        "timeout",
    ),
    ExceptionCase(
        "read timeout",
        lambda: httpx.ReadTimeout("timed out", request=_request()),
        TransientError,
        "timeout",
        "timeout_s",
    ),
    ExceptionCase(
        "write timeout",
        lambda: httpx.WriteTimeout("timed out", request=_request()),
        TransientError,
        "timeout",
    ),
    ExceptionCase(
        "pool timeout",
        lambda: httpx.PoolTimeout("timed out", request=_request()),
        TransientError,
        "timeout",
    ),
    ExceptionCase(
        "connection refused",
        lambda: chained(
            httpx.ConnectError("[Errno 111] Connection refused", request=_request()),
            ConnectionRefusedError(111, "Connection refused"),
        ),
        TransientError,
        "unreachable",
        "Connection refused",
    ),
    ExceptionCase(
        "connect error without cause",
        lambda: httpx.ConnectError("boom", request=_request()),
        TransientError,
        "unreachable",
    ),
    ExceptionCase(
        "certificate verification failed",
        lambda: chained(
            httpx.ConnectError("certificate verify failed", request=_request()), cert_failure()
        ),
        PermanentError,
        "tls_failure",
        "self-signed certificate",
    ),
    ExceptionCase(
        "other TLS failure",
        lambda: chained(
            httpx.ConnectError("wrong version number", request=_request()),
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        ),
        PermanentError,
        "tls_failure",
        "HTTPS",
    ),
    ExceptionCase(
        "TLS connection closed mid-handshake",
        lambda: chained(
            httpx.ConnectError("EOF", request=_request()),
            ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        ),
        TransientError,
        "unreachable",
    ),
    ExceptionCase(
        "unusable URL",
        lambda: httpx.UnsupportedProtocol("Request URL is missing a scheme", request=_request()),
        PermanentError,
        "invalid_url",
        "destination URL",
    ),
    ExceptionCase(
        "read error",
        lambda: httpx.ReadError("connection reset", request=_request()),
        TransientError,
        "transport",
    ),
    ExceptionCase(
        "remote protocol error",
        lambda: httpx.RemoteProtocolError("server disconnected", request=_request()),
        TransientError,
        "transport",
    ),
    ExceptionCase(
        "write error",
        lambda: httpx.WriteError("broken pipe", request=_request()),
        TransientError,
        "transport",
    ),
]


def check_exception_error(case: ExceptionCase, error: DeliveryError) -> None:
    assert type(error) is case.error
    assert error.cause == case.cause
    if case.mentions is not None:
        assert case.mentions in str(error)
    assert secrets_absent(str(error))
    assert secrets_absent(repr(error))


@pytest.mark.parametrize("case", EXCEPTION_CASES, ids=[c.name for c in EXCEPTION_CASES])
def test_classify_exception(case: ExceptionCase) -> None:
    check_exception_error(case, classify_exception(case.make()))


@pytest.mark.parametrize("case", EXCEPTION_CASES, ids=[c.name for c in EXCEPTION_CASES])
def test_write_maps_exception(case: ExceptionCase) -> None:
    original = case.make()
    receiver = Receiver(answers=[original])
    sink, _ = make_sink(receiver)

    with pytest.raises(DeliveryError) as info:
        sink.write(make_batch())

    check_exception_error(case, info.value)
    assert info.value.__cause__ is original
    assert "siem.example.test" in str(info.value)


# -- secrets ------------------------------------------------------------------------------------


def test_repr_shows_no_secret_nor_url_path() -> None:
    sink, _ = make_sink(Receiver())
    text = repr(sink)
    assert "siem-1" in text
    assert "siem.example.test" in text
    assert secrets_absent(text)


def test_secret_absent_from_every_error() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.Response(status) for status in (400, 401, 403, 404, 413, 429, 500, 503)
    ]
    answers += [case.make() for case in EXCEPTION_CASES]
    receiver = Receiver(answers=list(answers))
    sink, _ = make_sink(receiver)
    for _ in answers:
        with pytest.raises(DeliveryError) as info:
            sink.write(make_batch())
        assert secrets_absent(str(info.value))
        assert secrets_absent(repr(info.value))


# -- retries ------------------------------------------------------------------------------------


def no_sleep(seconds: float) -> None:
    return None


def test_retries_through_call_until_success() -> None:
    receiver = Receiver(answers=[httpx.Response(503), httpx.Response(503), httpx.Response(200)])
    sink, _ = make_sink(receiver)
    batch = make_batch()

    call(
        lambda: sink.write(batch),
        policy=RetryPolicy(attempts=5),
        retryable=sink.is_retryable,
        sleep=no_sleep,
    )

    assert len(receiver.requests) == 3
    assert len({r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests}) == 1


def test_permanent_error_is_not_retried() -> None:
    receiver = Receiver(answers=[httpx.Response(401), httpx.Response(200)])
    sink, _ = make_sink(receiver)
    batch = make_batch()

    with pytest.raises(PermanentError) as info:
        call(
            lambda: sink.write(batch),
            policy=RetryPolicy(attempts=5),
            retryable=sink.is_retryable,
            sleep=no_sleep,
        )

    assert len(receiver.requests) == 1
    assert info.value.cause == "http_401"


def test_retry_after_is_used_as_the_wait() -> None:
    receiver = Receiver(answers=[httpx.Response(429, headers={"Retry-After": "7"})])
    sink, _ = make_sink(receiver)
    batch = make_batch()
    waits: list[float] = []

    call(
        lambda: sink.write(batch),
        policy=RetryPolicy(attempts=3),
        retryable=sink.is_retryable,
        sleep=waits.append,
    )

    assert waits == [7.0]
    assert len(receiver.requests) == 2


def test_is_retryable() -> None:
    sink, _ = make_sink(Receiver())
    assert sink.is_retryable(TransientError("x"))
    assert not sink.is_retryable(PermanentError("x"))
    assert not sink.is_retryable(ValueError("x"))


# -- client ownership ---------------------------------------------------------------------------


def test_close_leaves_a_given_client_open() -> None:
    sink, client = make_sink(Receiver())
    sink.close()
    assert not client.is_closed


def test_owned_client_settings_and_close() -> None:
    sink = WebhookSink(make_destination(timeout_s=3.5))
    client = sink._client
    assert client.follow_redirects is False
    assert client.timeout.read == 3.5
    assert client.timeout.connect == 3.5
    sink.close()
    assert client.is_closed


@pytest.mark.parametrize("url", ["http://", "https://[::1", "https:///path-only"])
def test_url_without_a_host_is_refused_by_validation(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        make_destination(url=url)


def test_missing_ca_file_is_a_config_error(tmp_path: Any) -> None:
    missing = f"{tmp_path}/no-such-ca.pem"
    with pytest.raises(ConfigError, match="ca_file"):
        WebhookSink(make_destination(ca_file=missing))
