"""The helpers the object-store sinks share (table-driven): following a vendor exception to
what is behind it, TLS failures, headers, hosts, and the errors all three stores raise alike."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import urllib3
from azure.core.exceptions import ServiceRequestError
from botocore.exceptions import SSLError as BotoSSLError
from requests.structures import CaseInsensitiveDict

from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.vendor_errors import TlsFailure

SECRET = "sig=unit-test-secret-signature"
TARGET = "S3 bucket 'logs' at 127.0.0.1:9"


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as ``raise outer from inner`` leaves it."""
    outer.__cause__ = inner
    return outer


def raised_in(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as raising it while handling ``inner`` leaves it."""
    outer.__context__ = inner
    return outer


def with_attribute(name: str, value: Any) -> BaseException:
    error = RuntimeError("outer")
    setattr(error, name, value)
    return error


def verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "certificate has expired"
    return error


def openssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, "handshake failed")
    error.reason = reason
    return error


def requests_chain(inner: BaseException) -> requests.exceptions.SSLError:
    """How requests reports a TLS failure: its SSLError around urllib3's MaxRetryError, whose
    ``reason`` is urllib3's SSLError around the ``ssl`` error."""
    pool = urllib3.HTTPSConnectionPool("127.0.0.1", 9)
    retries = urllib3.exceptions.MaxRetryError(pool, "/", reason=urllib3.exceptions.SSLError(inner))
    return requests.exceptions.SSLError(retries)


def boto_chain(inner: BaseException) -> BotoSSLError:
    """How botocore reports one: its SSLError with urllib3's in ``kwargs['error']``."""
    return BotoSSLError(
        endpoint_url=f"https://127.0.0.1:9/?{SECRET}", error=urllib3.exceptions.SSLError(inner)
    )


def azure_chain(inner: BaseException) -> ServiceRequestError:
    """How azure-core reports one: ServiceRequestError with requests' as ``inner_exception``."""
    wrapper = requests_chain(inner)
    return ServiceRequestError(wrapper, error=wrapper)


# -- causes ----------------------------------------------------------------------------------------

INNER = ValueError("inner")


@dataclass(frozen=True)
class CauseCase:
    name: str
    exc: BaseException
    behind: BaseException | None


CAUSE_CASES = [
    CauseCase("nothing-behind", RuntimeError("alone"), None),
    CauseCase("raise-from", raised_from(RuntimeError("outer"), INNER), INNER),
    CauseCase("raised-while-handling", raised_in(RuntimeError("outer"), INNER), INNER),
    CauseCase("azure-inner-exception", with_attribute("inner_exception", INNER), INNER),
    CauseCase("urllib3-reason", with_attribute("reason", INNER), INNER),
    CauseCase("botocore-kwargs-error", with_attribute("kwargs", {"error": INNER}), INNER),
    CauseCase("wrapped-as-argument", RuntimeError("outer", INNER), INNER),
    CauseCase("reason-not-an-exception", with_attribute("reason", "text"), None),
    CauseCase("kwargs-not-a-dict", with_attribute("kwargs", [INNER]), None),
]


@pytest.mark.parametrize("case", CAUSE_CASES, ids=[c.name for c in CAUSE_CASES])
def test_causes_follows_each_way_of_wrapping(case: CauseCase) -> None:
    found = list(vendor.causes(case.exc))

    assert found[0] is case.exc
    assert found[1:] == ([] if case.behind is None else [case.behind])


def test_causes_goes_nearest_first_through_several_layers() -> None:
    deepest = ssl.SSLEOFError(8, "EOF")
    middle = urllib3.exceptions.SSLError(deepest)
    outer = BotoSSLError(endpoint_url="https://h", error=middle)
    outer.__context__ = middle

    assert list(vendor.causes(outer)) == [outer, middle, deepest]


def test_causes_yields_each_once_through_a_cycle() -> None:
    first, second = RuntimeError("first"), RuntimeError("second")
    first.__cause__ = second
    second.__context__ = first

    assert list(vendor.causes(first)) == [first, second]


# -- TLS -------------------------------------------------------------------------------------------

HUNG_UP = TlsFailure("the connection was closed during the TLS handshake", hung_up=True)
EXPIRED = TlsFailure("certificate has expired", hung_up=False)


@dataclass(frozen=True)
class TlsCase:
    name: str
    exc: BaseException
    found: TlsFailure | None
    by_name: TlsFailure | None


TLS_CASES = [
    TlsCase("not-tls", RuntimeError("connection refused"), None, None),
    TlsCase("eof", ssl.SSLEOFError(8, "EOF"), HUNG_UP, HUNG_UP),
    TlsCase("zero-return", ssl.SSLZeroReturnError(6, "closed"), HUNG_UP, HUNG_UP),
    TlsCase("verify-message", verify_failure(), EXPIRED, EXPIRED),
    TlsCase("openssl-reason", openssl_error("WRONG_VERSION_NUMBER"),
            TlsFailure("WRONG_VERSION_NUMBER", False), TlsFailure("WRONG_VERSION_NUMBER", False)),
    TlsCase("no-reason", ssl.SSLCertVerificationError(1, "x"),
            TlsFailure("SSLCertVerificationError", False),
            TlsFailure("SSLCertVerificationError", False)),
    TlsCase("boto-eof", boto_chain(ssl.SSLEOFError(8, "EOF")), HUNG_UP, HUNG_UP),
    TlsCase("boto-verify", boto_chain(verify_failure()), EXPIRED, EXPIRED),
    TlsCase("requests-eof", requests_chain(ssl.SSLEOFError(8, "EOF")), HUNG_UP, HUNG_UP),
    TlsCase("requests-verify", requests_chain(verify_failure()), EXPIRED, EXPIRED),
    TlsCase("requests-alone", requests.exceptions.SSLError("no ssl error inside"), None,
            vendor.HANDSHAKE_FAILED),
    TlsCase("azure-wrapping-ssl", ServiceRequestError("x", error=verify_failure()), EXPIRED,
            EXPIRED),
    TlsCase("azure-over-requests", azure_chain(verify_failure()), EXPIRED, EXPIRED),
]  # fmt: skip


@pytest.mark.parametrize("case", TLS_CASES, ids=[c.name for c in TLS_CASES])
def test_tls_failure(case: TlsCase) -> None:
    assert vendor.tls_failure(case.exc) == case.found


@pytest.mark.parametrize("case", TLS_CASES, ids=[c.name for c in TLS_CASES])
def test_tls_failure_by_name_prefers_the_real_ssl_error(case: TlsCase) -> None:
    assert vendor.tls_failure(case.exc, by_name=True) == case.by_name


@dataclass(frozen=True)
class TlsErrorCase:
    name: str
    failure: TlsFailure | None
    error: type[DeliveryError]
    cause: str
    text: str


TLS_ERROR_CASES = [
    TlsErrorCase("hung-up", HUNG_UP, TransientError, "unreachable",
                 "could not connect to {t}: the connection was closed during the TLS handshake; "
                 "if this persists, check the endpoint and any proxy in between"),
    TlsErrorCase("verify", EXPIRED, PermanentError, "tls_failure",
                 "{t}: TLS failed (certificate has expired): check that endpoint_url serves "
                 "HTTPS with a certificate the sink workers trust"),
    TlsErrorCase("unknown", None, PermanentError, "tls_failure",
                 "{t}: TLS failed (TLS handshake failed): check that endpoint_url serves HTTPS "
                 "with a certificate the sink workers trust"),
]  # fmt: skip


@pytest.mark.parametrize("case", TLS_ERROR_CASES, ids=[c.name for c in TLS_ERROR_CASES])
def test_tls_error(case: TlsErrorCase) -> None:
    error = vendor.tls_error(TARGET, case.failure, endpoint="endpoint_url")

    assert type(error) is case.error
    assert error.cause == case.cause
    assert str(error) == case.text.format(t=TARGET)


# -- headers, answers, hosts -----------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderCase:
    name: str
    headers: Any
    expected: str | None


HEADER_CASES = [
    HeaderCase("exact", {"Retry-After": "7"}, "7"),
    HeaderCase("other-case", {"retry-after": "7"}, "7"),
    HeaderCase("exact-first", {"retry-after": "1", "Retry-After": "7"}, "7"),
    HeaderCase("case-insensitive-dict", CaseInsensitiveDict({"RETRY-AFTER": "7"}), "7"),
    HeaderCase("absent", {"Content-Type": "text/plain"}, None),
    HeaderCase("empty", {}, None),
    HeaderCase("not-text", {"Retry-After": 7}, None),
    HeaderCase("non-text-key", {7: "x", "retry-after": "7"}, "7"),
]


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c.name for c in HEADER_CASES])
def test_header(case: HeaderCase) -> None:
    assert vendor.header(case.headers, "Retry-After") == case.expected


class FakeResponse:
    def __init__(self, headers: Any) -> None:
        self.headers = headers


RESPONSE_CASES = [
    HeaderCase("no-response", RuntimeError("x"), None),
    HeaderCase("response-without-headers", with_attribute("response", object()), None),
    HeaderCase("headers-not-a-mapping", with_attribute("response", FakeResponse([("a", "b")])),
               None),
    HeaderCase("found", with_attribute("response", FakeResponse({"retry-after": "7"})), "7"),
]  # fmt: skip


@pytest.mark.parametrize("case", RESPONSE_CASES, ids=[c.name for c in RESPONSE_CASES])
def test_response_header(case: HeaderCase) -> None:
    assert vendor.response_header(case.headers, "Retry-After") == case.expected


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchBucket", 404, " (NoSuchBucket, HTTP 404)"),
        ("", 503, " (HTTP 503)"),
        ("ServerBusy", None, " (ServerBusy)"),
        ("", None, ""),
    ],
)
def test_answered(code: str, status: int | None, expected: str) -> None:
    assert vendor.answered(code, status) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, None),
        ("", None),
        ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:10000/devstoreaccount1", "127.0.0.1:10000"),
        (
            f"https://user:{SECRET}@acct.blob.core.windows.net/c?{SECRET}",
            "acct.blob.core.windows.net",
        ),
        ("http://[::1]:4443/storage", "::1:4443"),
        ("not a url", None),
        ("/just/a/path", None),
        ("http://127.0.0.1:99999", None),
        ("http://[::1", None),
    ],
)
def test_host_of(url: str | None, expected: str | None) -> None:
    assert vendor.host_of(url) == expected


# -- errors every store raises alike ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "throttled"), (408, "timeout"), (500, "unavailable"), (503, "unavailable")],
)
def test_retry_kind(status: int, kind: str) -> None:
    assert vendor.retry_kind(status) == kind


@dataclass(frozen=True)
class MessageCase:
    name: str
    error: DeliveryError
    kind: type[DeliveryError]
    cause: str
    text: str
    retry_after: float | None = None


MESSAGE_CASES = [
    MessageCase("throttled", vendor.retry_later("T", "throttled", " (SlowDown, HTTP 503)", 7.0),
                TransientError, "throttled",
                "T asked to slow down (SlowDown, HTTP 503), asking to retry after 7 s; if this "
                "persists, check the service's health", retry_after=7.0),
    MessageCase("timeout", vendor.retry_later("T", "timeout", " (HTTP 408)", None),
                TransientError, "timeout",
                "T timed out waiting for the request (HTTP 408); if this persists, check the "
                "service's health"),
    MessageCase("unavailable-own-words",
                vendor.retry_later("T", "unavailable", "", 0.5, what="is down",
                                   health="the account's"),
                TransientError, "unavailable",
                "T is down, asking to retry after 0.5 s; if this persists, check the account's "
                "health", retry_after=0.5),
    MessageCase("rejected", vendor.rejected("T", " (HTTP 400)", settings="bucket, endpoint"),
                PermanentError, "rejected",
                "T rejected the request (HTTP 400): check the destination settings (bucket, "
                "endpoint)"),
    MessageCase("connect-timeout", vendor.connect_timed_out("T"), TransientError, "timeout",
                "connecting to T timed out; if this persists, check that the endpoint is "
                "reachable from the sink workers"),
    MessageCase("connect-timeout-account", vendor.connect_timed_out("T", reachable="the account"),
                TransientError, "timeout",
                "connecting to T timed out; if this persists, check that the account is "
                "reachable from the sink workers"),
    MessageCase("read-timeout", vendor.read_timed_out("T"), TransientError, "timeout",
                "T did not answer in time; if this persists, check the service's health"),
    MessageCase("read-timeout-account", vendor.read_timed_out("T", health="the account's"),
                TransientError, "timeout",
                "T did not answer in time; if this persists, check the account's health"),
    MessageCase("exchange-failed", vendor.exchange_failed("T", ValueError(SECRET)),
                TransientError, "transport", "the exchange with T failed (ValueError)"),
    MessageCase("unexpected", vendor.unexpected("T", KeyError(SECRET)), TransientError,
                "unexpected", "unexpected error talking to T (KeyError)"),
]  # fmt: skip


@pytest.mark.parametrize("case", MESSAGE_CASES, ids=[c.name for c in MESSAGE_CASES])
def test_errors_raised_alike(case: MessageCase) -> None:
    assert type(case.error) is case.kind
    assert case.error.cause == case.cause
    assert str(case.error) == case.text
    assert SECRET not in str(case.error)  # an exception is named by its class, never quoted
    if isinstance(case.error, TransientError):
        assert case.error.retry_after == case.retry_after
