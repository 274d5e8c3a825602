"""The collector sinks' shared HTTP delivery: splitting into requests, gzip, answers, the
exchange's mapping of transport failures and its address check."""

from __future__ import annotations

import gzip
import json
import ssl
from dataclasses import dataclass

import httpx
import pytest

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.errors import ConfigError
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.http_batch import (
    HttpExchange,
    Refusal,
    build_client,
    classify_status,
    describe_target,
    event_documents,
    gzip_body,
    join_url,
    json_answer,
    split_runs,
)
from tests.factories import make_event

NOW = 1_795_000_000.0


@dataclass(frozen=True)
class SplitCase:
    name: str
    sizes: list[int]
    max_items: int
    max_bytes: int
    separator: int
    framing: int
    runs: list[tuple[int, int]]


SPLIT_CASES = [
    SplitCase("nothing", [], 10, 100, 0, 0, []),
    SplitCase("one run", [10, 10, 10], 10, 100, 0, 0, [(0, 3)]),
    SplitCase("by items", [1] * 5, 2, 100, 0, 0, [(0, 2), (2, 4), (4, 5)]),
    SplitCase("exactly the bytes", [50, 50], 10, 100, 0, 0, [(0, 2)]),
    SplitCase("one byte over", [50, 51], 10, 100, 0, 0, [(0, 1), (1, 2)]),
    # A JSON array: "[" + 49 + "," + 48 + "]" = 100 bytes fits; one more byte does not.
    SplitCase("array framing fits", [49, 48], 10, 100, 1, 2, [(0, 2)]),
    SplitCase("array framing over", [49, 49], 10, 100, 1, 2, [(0, 1), (1, 2)]),
    SplitCase("oversized item alone", [10, 500, 10], 10, 100, 0, 0, [(0, 1), (1, 2), (2, 3)]),
    SplitCase("oversized first", [500, 10, 10], 10, 100, 0, 0, [(0, 1), (1, 3)]),
    SplitCase("items and bytes", [30] * 7, 3, 70, 0, 0, [(0, 2), (2, 4), (4, 6), (6, 7)]),
]


@pytest.mark.parametrize("case", SPLIT_CASES, ids=lambda c: c.name)
def test_split_runs(case: SplitCase) -> None:
    runs = split_runs(
        case.sizes,
        max_items=case.max_items,
        max_bytes=case.max_bytes,
        separator=case.separator,
        framing=case.framing,
    )
    assert [(r.start, r.stop) for r in runs] == case.runs
    # Every item once, in order; no run empty.
    assert [i for r in runs for i in r] == list(range(len(case.sizes)))
    assert all(len(r) > 0 for r in runs)


def test_split_runs_refuses_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_runs([1], max_items=0, max_bytes=10)


def test_gzip_is_the_same_bytes_every_attempt() -> None:
    body = b'{"a":1}' * 100
    assert gzip_body(body) == gzip_body(body)
    assert gzip.decompress(gzip_body(body)) == body


def test_event_documents_are_one_json_object_per_event() -> None:
    events = [make_event(details={"note": "line\nbreak"}), make_event()]
    documents = event_documents(events)
    assert len(documents) == 2
    assert json.loads(documents[0])["details"] == {"note": "line\nbreak"}
    assert b'"occurred_at":"2026-11-27T10:00:00.123456Z"' in documents[0]
    assert event_documents([]) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"text":"Success","code":0}', {"text": "Success", "code": 0}),
        (b"[1, 2]", {}),
        (b"<html>bad gateway</html>", {}),
        (b"", {}),
        (b"\xff\xfe", {}),
    ],
)
def test_json_answer(content: bytes, expected: dict[str, object]) -> None:
    assert json_answer(content) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://splunk.example.com:8088/x?y=1", "HEC splunk.example.com:8088"),
        ("https://splunk.example.com/path/t0p", "HEC splunk.example.com"),
    ],
)
def test_describe_target_names_host_and_port_only(url: str, expected: str) -> None:
    assert describe_target("HEC", url, "d1") == expected


@pytest.mark.parametrize("url", ["ftp://host/x", "https://", "not a url"])
def test_describe_target_refuses_urls_without_host(url: str) -> None:
    with pytest.raises(ConfigError, match="d1"):
        describe_target("HEC", url, "d1")


def test_join_url_keeps_a_path_prefix() -> None:
    assert (
        join_url("https://proxy.example.com/splunk/", "/x") == "https://proxy.example.com/splunk/x"
    )


REFUSALS = {403: Refusal("bad_credentials", "check the key"), 503: Refusal("never", "used")}


@dataclass(frozen=True)
class StatusCase:
    status: int
    error: type[Exception] | None
    cause: str | None
    retry_after: float | None = None
    headers: tuple[tuple[str, str], ...] = ()


STATUS_CASES = [
    StatusCase(200, None, None),
    StatusCase(202, None, None),
    StatusCase(403, PermanentError, "bad_credentials"),
    StatusCase(404, PermanentError, "http_404"),
    StatusCase(301, PermanentError, "redirect"),
    # A refusal listed for a retryable status does not make it permanent.
    StatusCase(503, TransientError, "http_503", 7.0, (("Retry-After", "7"),)),
    StatusCase(429, TransientError, "http_429"),
    StatusCase(408, TransientError, "http_408"),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=lambda c: str(c.status))
def test_classify_status(case: StatusCase) -> None:
    error = classify_status(
        case.status, dict(case.headers), NOW, target="HEC h", refusals=REFUSALS, detail="said"
    )
    if case.error is None:
        assert error is None
        return
    assert isinstance(error, case.error)
    assert error.cause == case.cause
    assert "HEC h" in str(error)
    if case.retry_after is not None:
        assert isinstance(error, TransientError)
        assert error.retry_after == case.retry_after


def _raising(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handler))


def _request() -> httpx.Request:
    return httpx.Request("POST", "https://hec.example.com/x")


@pytest.mark.parametrize(
    ("exc", "error", "cause"),
    [
        (httpx.ConnectError("refused", request=_request()), TransientError, "unreachable"),
        (httpx.ReadTimeout("slow", request=_request()), TransientError, "timeout"),
        (httpx.RemoteProtocolError("cut", request=_request()), TransientError, "transport"),
    ],
)
def test_exchange_maps_transport_failures(
    exc: Exception, error: type[Exception], cause: str
) -> None:
    exchange = HttpExchange(_raising(exc), target="HEC hec.example.com")
    with pytest.raises(error) as info:
        exchange.send("POST", "https://hec.example.com/x", headers={})
    assert getattr(info.value, "cause", None) == cause


def test_exchange_maps_a_tls_failure_to_tls_failure() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed")
    inner.verify_message = "self-signed certificate"
    try:
        try:
            raise inner
        except ssl.SSLError as low:
            raise httpx.ConnectError("tls", request=_request()) from low
    except httpx.ConnectError as exc:
        outer = exc
    exchange = HttpExchange(_raising(outer), target="HEC hec.example.com")
    with pytest.raises(PermanentError, match="self-signed certificate") as info:
        exchange.send("POST", "https://hec.example.com/x", headers={})
    assert info.value.cause == "tls_failure"


def test_exchange_checks_the_address_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    policy = AddressPolicy(resolver=lambda host, port: ["10.0.0.5"])
    client = httpx.Client(transport=httpx.MockTransport(handler))
    exchange = HttpExchange(client, target="HEC hec.example.com", address_policy=policy)
    with pytest.raises(PermanentError) as info:
        exchange.send("POST", "https://hec.example.com/x", headers={})
    assert info.value.cause == "address_refused"
    assert sent == []


def test_exchange_leaves_a_given_client_open() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    HttpExchange(client, target="t", owns_client=False).close()
    assert not client.is_closed
    HttpExchange(client, target="t", owns_client=True).close()
    assert client.is_closed


def test_build_client_refuses_a_ca_file_that_does_not_load(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        build_client(
            destination_id="d1",
            timeout_s=5,
            verify_tls=True,
            ca_file="/nonexistent/ca.pem",
            address_policy=None,
            target="t",
        )


def test_build_client_follows_no_redirects_and_reads_no_proxy_settings() -> None:
    client = build_client(
        destination_id="d1",
        timeout_s=3,
        verify_tls=True,
        ca_file=None,
        address_policy=AddressPolicy(),
        target="t",
    )
    try:
        assert client.follow_redirects is False
        assert client.trust_env is False
        assert client.timeout.read == 3
        assert client.headers["User-Agent"].startswith("auditstream/")
    finally:
        client.close()
