"""The S3 sink without a network: error mapping (table-driven), request parameters, settings
errors, assumed-role credentials against a fake STS, and no secret in messages or ``repr``.

Requests that would leave the process are answered by a ``before-send`` hook or botocore's
Stubber; every endpoint named here is on 127.0.0.1.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from botocore.stub import Stubber
from pydantic import ValidationError

from auditstream.config.destinations import S3Destination
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.s3 import S3Sink, assumed_role_credentials, classify_s3_error, put_extra_args

ACCESS_KEY = "AKIAUNITTESTKEY00001"
SECRET_KEY = "unit-test-secret-key-7f3c"
SESSION_TOKEN = "unit-test-session-token-99aa"
EXTERNAL_ID = "unit-test-external-id-41b2"
ENDPOINT = "http://127.0.0.1:9"
NOW = 1_795_000_000.0
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, EXTERNAL_ID, "ASIAROLE", "role-secret")


def no_secret(text: str) -> bool:
    return all(secret not in text for secret in SECRETS)


def client_error(
    code: str,
    status: int,
    *,
    headers: dict[str, str] | None = None,
    operation: str = "PutObject",
    **error: str,
) -> ClientError:
    """A ClientError as botocore builds it; the store's message quotes a secret, which must
    never reach our messages."""
    response: Any = {
        "Error": {"Code": code, "Message": f"store says: {SECRET_KEY} {ACCESS_KEY}", **error},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, operation)


# -- classification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    exc: BaseException
    error: type[DeliveryError]
    cause: str
    operation: str = "write"
    retry_after: float | None = None
    hint: str | None = None


def tls_error(reason: BaseException) -> SSLError:
    return SSLError(endpoint_url=f"https://127.0.0.1:9/logs?x={SECRET_KEY}", error=reason)


def verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


CASES = [
    # throttling, unavailability and timeouts: retried, Retry-After honoured
    Case("slowdown", client_error("SlowDown", 503), TransientError, "throttled"),
    Case(
        "slowdown-retry-after",
        client_error("SlowDown", 503, headers={"retry-after": "7"}),
        TransientError,
        "throttled",
        retry_after=7.0,
    ),
    Case("throttling", client_error("Throttling", 400), TransientError, "throttled"),
    Case("429", client_error("", 429), TransientError, "throttled"),
    Case("service-unavailable", client_error("ServiceUnavailable", 503), TransientError,
         "unavailable"),
    Case("internal-error", client_error("InternalError", 500), TransientError, "unavailable"),
    Case("502-no-code", client_error("502", 502), TransientError, "unavailable"),
    Case("request-timeout", client_error("RequestTimeout", 400), TransientError, "timeout"),
    # missing bucket or object
    Case("no-such-bucket", client_error("NoSuchBucket", 404), PermanentError, "bucket_missing",
         hint="create it"),
    Case("head-404-write", client_error("404", 404), PermanentError, "bucket_missing"),
    Case("no-such-key", client_error("NoSuchKey", 404), PermanentError, "object_missing",
         operation="read"),
    Case("head-404-read", client_error("404", 404), PermanentError, "object_missing",
         operation="read"),
    # access and credentials
    Case("access-denied", client_error("AccessDenied", 403), PermanentError, "access_denied",
         hint="s3:PutObject"),
    Case("access-denied-read", client_error("AccessDenied", 403), PermanentError,
         "access_denied", operation="read", hint="s3:GetObject"),
    Case("access-denied-delete", client_error("AccessDenied", 403), PermanentError,
         "access_denied", operation="delete", hint="s3:DeleteObject"),
    Case("head-403", client_error("403", 403), PermanentError, "access_denied"),
    Case("invalid-access-key", client_error("InvalidAccessKeyId", 403), PermanentError,
         "bad_credentials", hint="access_key_id"),
    Case("signature-mismatch", client_error("SignatureDoesNotMatch", 403), PermanentError,
         "bad_credentials"),
    Case("expired-token", client_error("ExpiredToken", 400), PermanentError, "bad_credentials"),
    Case("401", client_error("", 401), PermanentError, "bad_credentials"),
    Case(
        "assume-role-denied",
        client_error("AccessDenied", 403, operation="AssumeRole"),
        PermanentError,
        "access_denied",
        hint="trust policy",
    ),
    # region
    Case(
        "permanent-redirect",
        client_error("PermanentRedirect", 301, headers={"x-amz-bucket-region": "eu-west-1"}),
        PermanentError,
        "region_mismatch",
        hint="set the destination's region to eu-west-1",
    ),
    Case(
        "authorization-header-malformed",
        client_error("AuthorizationHeaderMalformed", 400, Region="eu-central-1"),
        PermanentError,
        "region_mismatch",
        hint="eu-central-1",
    ),
    Case("head-301", client_error("301", 301), PermanentError, "region_mismatch"),
    # other refusals
    Case("clock-skew", client_error("RequestTimeTooSkewed", 403), PermanentError, "clock_skew",
         hint="NTP"),
    Case("kms-key", client_error("KMS.NotFoundException", 400), PermanentError, "kms_key",
         hint="kms_key_id"),
    Case("invalid-bucket-name", client_error("InvalidBucketName", 400), PermanentError,
         "invalid_bucket"),
    Case("invalid-argument", client_error("InvalidArgument", 400), PermanentError, "rejected"),
    # transport
    Case("connection-refused", EndpointConnectionError(endpoint_url=ENDPOINT), TransientError,
         "unreachable"),
    Case("connection-closed", ConnectionClosedError(endpoint_url=ENDPOINT), TransientError,
         "unreachable"),
    Case("connect-timeout", ConnectTimeoutError(endpoint_url=ENDPOINT), TransientError,
         "timeout"),
    Case("read-timeout", ReadTimeoutError(endpoint_url=ENDPOINT), TransientError, "timeout"),
    Case("tls-verify", tls_error(verify_failure()), PermanentError, "tls_failure",
         hint="self-signed certificate"),
    Case("tls-eof", tls_error(ssl.SSLEOFError(8, "EOF occurred")), TransientError,
         "unreachable"),
    # credentials and settings found wanting before any request
    Case("no-credentials", NoCredentialsError(), PermanentError, "bad_credentials"),
    Case("partial-credentials", PartialCredentialsError(provider="env", cred_var="secret"),
         PermanentError, "bad_credentials"),
    Case("no-region", NoRegionError(), PermanentError, "region_mismatch"),
    Case("param-validation", ParamValidationError(report=SECRET_KEY), PermanentError,
         "invalid_request"),
    Case("not-a-vendor-error", RuntimeError(SECRET_KEY), TransientError, "unexpected"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_classify_s3_error(case: Case) -> None:
    error = classify_s3_error(
        case.exc, target="S3 bucket 'logs'", operation=case.operation, region="us-east-1", now=NOW
    )

    assert type(error) is case.error
    assert error.cause == case.cause
    assert error.retryable is (case.error is TransientError)
    if isinstance(error, TransientError):
        assert error.retry_after == case.retry_after
    message = str(error)
    assert "'logs'" in message or "STS" in message
    if case.hint is not None:
        assert case.hint in message
    assert no_secret(message)
    assert "store says" not in message  # the store's own text is never quoted


def test_retry_after_http_date() -> None:
    error = classify_s3_error(
        client_error("SlowDown", 503, headers={"Retry-After": "Sat, 26 Nov 2026 06:13:40 GMT"}),
        now=datetime(2026, 11, 26, 6, 13, 10, tzinfo=UTC).timestamp(),
    )
    assert isinstance(error, TransientError)
    assert error.retry_after == 30.0


# -- request parameters ---------------------------------------------------------------------------


AVRO = {"ContentType": "application/avro"}


@pytest.mark.parametrize(
    ("encoding", "sse", "kms", "expected"),
    [
        (None, "none", None, AVRO),
        ("gzip", "none", None, {**AVRO, "ContentEncoding": "gzip"}),
        (None, "none", "ignored-without-kms", AVRO),
        (None, "AES256", None, {**AVRO, "ServerSideEncryption": "AES256"}),
        (None, "aws:kms", None, {**AVRO, "ServerSideEncryption": "aws:kms"}),
        (
            None,
            "aws:kms",
            "arn:aws:kms:eu-west-1:1:key/k",
            {
                **AVRO,
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "arn:aws:kms:eu-west-1:1:key/k",
            },
        ),
    ],
)
def test_put_extra_args(
    encoding: str | None, sse: str, kms: str | None, expected: dict[str, str]
) -> None:
    args = put_extra_args(
        content_type="application/avro", content_encoding=encoding, sse=sse, kms_key_id=kms
    )
    assert args == expected


def make_destination(**overrides: Any) -> S3Destination:
    settings: dict[str, Any] = {
        "id": "s3-unit",
        "bucket": "logs",
        "region": "us-east-1",
        "endpoint_url": ENDPOINT,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "session_token": SESSION_TOKEN,
    }
    settings.update(overrides)
    return S3Destination.model_validate(settings)


def test_put_object_below_threshold_with_headers_and_sse() -> None:
    sink = S3Sink(make_destination(sse="aws:kms", kms_key_id="alias/audit"))
    with Stubber(sink.client) as stub:
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "logs",
                "Key": "a/b.ndjson.gz",
                "Body": b"data",
                "ContentType": "application/x-ndjson",
                "ContentEncoding": "gzip",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "alias/audit",
            },
        )
        sink._put(
            "a/b.ndjson.gz",
            b"data",
            content_type="application/x-ndjson",
            content_encoding="gzip",
        )
        stub.assert_no_pending_responses()


def test_put_maps_vendor_errors() -> None:
    sink = S3Sink(make_destination())
    with Stubber(sink.client) as stub:
        stub.add_client_error("put_object", "NoSuchBucket", http_status_code=404)
        with pytest.raises(PermanentError) as info:
            sink._put("k", b"1", content_type="application/json", content_encoding=None)
    assert info.value.cause == "bucket_missing"
    assert "S3 bucket 'logs' at 127.0.0.1:9" in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_botocore_retries_are_off() -> None:
    sink = S3Sink(make_destination())
    # one attempt in all: botocore's max_attempts=1 would mean one retry
    assert sink.client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert sink.client.meta.config.s3 == {"addressing_style": "path"}


@pytest.mark.parametrize(
    ("overrides", "path_style"),
    [
        ({}, True),  # an endpoint_url implies path-style
        ({"endpoint_url": None}, False),
        ({"endpoint_url": None, "force_path_style": True}, True),
    ],
)
def test_path_style(overrides: dict[str, Any], path_style: bool) -> None:
    sink = S3Sink(make_destination(**overrides))
    style = (sink.client.meta.config.s3 or {}).get("addressing_style")
    assert (style == "path") is path_style


def test_repr_and_settings_hold_no_secret() -> None:
    sink = S3Sink(
        make_destination(role_arn="arn:aws:iam::123456789012:role/audit", external_id=EXTERNAL_ID),
        sts_client=FakeSts(),
    )
    text = repr(sink)
    assert "s3-unit" in text
    assert "127.0.0.1:9" in text
    assert no_secret(text)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"kms_key_id": "alias/k"}, "kms_key_id"),
        ({"secret_access_key": None}, "secret_access_key"),
        ({"access_key_id": None, "secret_access_key": None}, "session_token"),
        ({"external_id": EXTERNAL_ID}, "external_id"),
        ({"endpoint_url": f"http://{SECRET_KEY}@:80/"}, "endpoint_url"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_validation(
    overrides: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make_destination(**overrides)
    assert names in _refusal(info.value)
    assert no_secret(_refusal(info.value))


def _refusal(exc: ValidationError) -> str:
    """What a client is told (the API renders errors without their input)."""
    return "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))


# -- assumed role ---------------------------------------------------------------------------------


@dataclass
class FakeSts:
    """Answers ``assume_role`` with numbered credentials valid for ``lifetime``."""

    lifetime: timedelta = timedelta(hours=1)
    calls: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None

    def assume_role(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.error is not None:
            raise self.error
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAROLE{n:04d}",
                "SecretAccessKey": f"role-secret-{n}",
                "SessionToken": f"role-token-{n}",
                "Expiration": datetime.now(UTC) + self.lifetime,
            }
        }


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


@dataclass
class SentRequests:
    """A ``before-send`` hook: records each signed request and answers 200 itself."""

    headers: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.headers.append({k: v.decode() if isinstance(v, bytes) else v
                             for k, v in request.headers.items()})  # fmt: skip
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _EmptyBody())

    def signed_with(self, index: int) -> str:
        authorization = self.headers[index]["Authorization"]
        return authorization.split("Credential=", 1)[1].split("/", 1)[0]


def role_sink(sts: FakeSts) -> tuple[S3Sink, SentRequests]:
    destination = make_destination(
        access_key_id=None,
        secret_access_key=None,
        session_token=None,
        role_arn="arn:aws:iam::123456789012:role/audit-writer",
        external_id=EXTERNAL_ID,
    )
    sink = S3Sink(destination, sts_client=sts)
    sent = SentRequests()
    sink.client.meta.events.register("before-send.s3", sent)
    return sink, sent


def put(sink: S3Sink) -> None:
    sink._put("k", b"1", content_type="application/json", content_encoding=None)


def test_assumed_role_signs_requests_and_is_fetched_once_while_valid() -> None:
    sts = FakeSts()
    sink, sent = role_sink(sts)
    assert sts.calls == []  # nothing is fetched before the first request

    put(sink)
    put(sink)

    assert sts.calls == [
        {
            "RoleArn": "arn:aws:iam::123456789012:role/audit-writer",
            "RoleSessionName": "auditstream-s3-unit",
            "DurationSeconds": 3600,
            "ExternalId": EXTERNAL_ID,
        }
    ]
    assert sent.signed_with(0) == sent.signed_with(1) == "ASIAROLE0001"
    assert sent.headers[0]["X-Amz-Security-Token"] == "role-token-1"


def test_assumed_role_is_refreshed_before_it_expires() -> None:
    # Credentials with 5 minutes left are inside botocore's refresh window: the next request
    # assumes the role again instead of signing with credentials about to expire.
    sts = FakeSts(lifetime=timedelta(minutes=5))
    sink, sent = role_sink(sts)

    put(sink)
    put(sink)

    assert len(sts.calls) == 2  # first use, then a refresh before the second request
    assert sent.signed_with(0) == "ASIAROLE0001"
    assert sent.signed_with(1) == "ASIAROLE0002"
    assert sent.headers[1]["X-Amz-Security-Token"] == "role-token-2"


def test_refresh_follows_the_clock() -> None:
    sts = FakeSts()
    clock = [datetime.now(UTC)]
    credentials = assumed_role_credentials(
        sts, role_arn="arn:aws:iam::1:role/r", session_name="s", time_fetcher=lambda: clock[0]
    )

    assert credentials.get_frozen_credentials().access_key == "ASIAROLE0001"
    clock[0] += timedelta(minutes=40)
    assert credentials.get_frozen_credentials().access_key == "ASIAROLE0001"
    clock[0] += timedelta(minutes=10)  # 10 minutes before expiry
    assert credentials.get_frozen_credentials().access_key == "ASIAROLE0002"
    assert "ExternalId" not in sts.calls[0]


def test_assume_role_refused_is_access_denied_without_secrets() -> None:
    sts = FakeSts(error=client_error("AccessDenied", 403, operation="AssumeRole"))
    sink, sent = role_sink(sts)

    with pytest.raises(PermanentError) as info:
        put(sink)

    assert info.value.cause == "access_denied"
    assert "trust policy" in str(info.value)
    assert no_secret(str(info.value))
    assert sent.headers == []
