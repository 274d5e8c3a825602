"""The GCS sink without a network: error mapping (table-driven), settings errors, lazy
credentials, and no secret in messages or ``repr``."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from pydantic import ValidationError

from auditstream.config.destinations import GcsDestination
from auditstream.config.errors import ConfigError
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.gcs import GcsSink, chunk_size_for, classify_gcs_error

PRIVATE_KEY_ID = "unit-test-private-key-id-5e7d"
ENDPOINT = "http://127.0.0.1:9"
NOW = datetime(2026, 11, 26, 6, 13, 10, tzinfo=UTC).timestamp()


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers or {})
    answer.url = f"{ENDPOINT}/upload/storage/v1/b/logs/o?token=secret-in-url"
    return answer


def auth_error(cls: type[auth.GoogleAuthError], message: str) -> BaseException:
    return cls(message)


def http_error(status: int, message: str) -> BaseException:
    error: BaseException = api.from_http_status(status, message)  # type: ignore[no-untyped-call]
    return error


def api_error(cls: type[api.GoogleAPICallError], message: str, **kwargs: Any) -> BaseException:
    return cls(f"{message} (secret-in-url)", **kwargs)


@dataclass(frozen=True)
class Case:
    name: str
    exc: BaseException
    error: type[DeliveryError]
    cause: str
    operation: str = "write"
    retry_after: float | None = None
    hint: str | None = None


def ssl_error(reason: BaseException) -> requests.exceptions.SSLError:
    try:
        raise requests.exceptions.SSLError("wrapped") from reason
    except requests.exceptions.SSLError as exc:
        return exc


def verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "unable to get local issuer certificate"
    return error


CASES = [
    # missing bucket or object
    Case("not-found-write", api_error(api.NotFound, "Not Found"), PermanentError,
         "bucket_missing", hint="create it"),
    Case("no-such-object", api_error(api.NotFound, "No such object: logs/k"), PermanentError,
         "object_missing", operation="read"),
    Case("bucket-missing-read", api_error(api.NotFound, "The specified bucket does not exist."),
         PermanentError, "bucket_missing", operation="read"),
    Case("not-found-delete", api_error(api.NotFound, "Not Found"), PermanentError,
         "object_missing", operation="delete"),
    # access and credentials
    Case("forbidden", api_error(api.Forbidden, "denied"), PermanentError, "access_denied",
         hint="storage.objects.create"),
    Case("forbidden-read", api_error(api.Forbidden, "denied"), PermanentError, "access_denied",
         operation="read", hint="storage.objects.get"),
    Case("unauthorized", api_error(api.Unauthorized, "bad token"), PermanentError,
         "bad_credentials", hint="service_account_json"),
    Case("refresh-error", auth_error(auth.RefreshError, "invalid_grant secret-in-url"),
         PermanentError, "bad_credentials"),
    Case("no-adc", auth_error(auth.DefaultCredentialsError, "none found"), PermanentError,
         "bad_credentials", hint="application default credentials"),
    Case("token-endpoint-down", auth_error(auth.TransportError, "down"), TransientError,
         "unreachable"),
    # throttling and unavailability
    Case("too-many-requests",
         api_error(api.TooManyRequests, "slow", response=response(429, {"Retry-After": "3"})),
         TransientError, "throttled", retry_after=3.0),
    Case("too-many-requests-date",
         api_error(api.TooManyRequests, "slow",
                   response=response(429, {"retry-after": "Thu, 26 Nov 2026 06:13:40 GMT"})),
         TransientError, "throttled", retry_after=30.0),
    Case("service-unavailable", api_error(api.ServiceUnavailable, "busy"), TransientError,
         "unavailable"),
    Case("internal-server-error", api_error(api.InternalServerError, "oops"), TransientError,
         "unavailable"),
    Case("bad-gateway", api_error(api.BadGateway, "proxy"), TransientError, "unavailable"),
    Case("gateway-timeout", api_error(api.GatewayTimeout, "slow"), TransientError,
         "unavailable"),
    Case("request-timeout-408", http_error(408, "slow secret-in-url"), TransientError,
         "timeout"),
    Case("invalid-response-503", InvalidResponse(response(503), "bad"), TransientError,
         "unavailable"),
    Case("checksum", DataCorruption(response(200), "crc32c mismatch"), TransientError,
         "checksum_mismatch"),
    # other refusals
    Case("bad-request", api_error(api.BadRequest, "kms"), PermanentError, "rejected",
         hint="kms_key_name"),
    Case("precondition", api_error(api.PreconditionFailed, "generation"), PermanentError,
         "rejected"),
    # transport
    Case("connection-refused", requests.ConnectionError("refused secret-in-url"),
         TransientError, "unreachable"),
    Case("connect-timeout", requests.exceptions.ConnectTimeout("slow"), TransientError,
         "timeout"),
    Case("read-timeout", requests.exceptions.ReadTimeout("slow"), TransientError, "timeout"),
    Case("chunked-encoding", requests.exceptions.ChunkedEncodingError("cut"), TransientError,
         "unreachable"),
    Case("tls-verify", ssl_error(verify_failure()), PermanentError, "tls_failure",
         hint="unable to get local issuer certificate"),
    Case("tls-eof", ssl_error(ssl.SSLEOFError(8, "EOF")), TransientError, "unreachable"),
    Case("not-a-vendor-error", RuntimeError("secret-in-url"), TransientError, "unexpected"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_classify_gcs_error(case: Case) -> None:
    error = classify_gcs_error(
        case.exc, target="GCS bucket 'logs'", operation=case.operation, now=NOW
    )

    assert type(error) is case.error
    assert error.cause == case.cause
    if isinstance(error, TransientError):
        assert error.retry_after == case.retry_after
    message = str(error)
    assert "GCS bucket 'logs'" in message
    if case.hint is not None:
        assert case.hint in message
    assert "secret-in-url" not in message  # the service's own text is never quoted


@pytest.mark.parametrize(
    ("threshold", "chunk"),
    [
        (256 * 1024, 256 * 1024),
        (300 * 1024, 256 * 1024),
        (8 * 1024 * 1024, 8 * 1024 * 1024),
        (8 * 1024 * 1024 + 1, 8 * 1024 * 1024),
    ],
)
def test_chunk_size_for(threshold: int, chunk: int) -> None:
    assert chunk_size_for(threshold) == chunk
    assert chunk % (256 * 1024) == 0


# -- settings and credentials ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_account_json() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "audit-project",
            "private_key_id": PRIVATE_KEY_ID,
            "private_key": pem,
            "client_email": "writer@audit-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{ENDPOINT}/token",
        }
    )


def make_destination(**overrides: Any) -> GcsDestination:
    settings: dict[str, Any] = {"id": "gcs-unit", "bucket": "logs", "endpoint": ENDPOINT}
    settings.update(overrides)
    return GcsDestination.model_validate(settings)


def test_service_account_sink_repr_holds_no_secret(service_account_json: str) -> None:
    sink = GcsSink(make_destination(service_account_json=service_account_json))
    text = repr(sink)
    assert "gcs-unit" in text
    assert "service_account" in text
    assert PRIVATE_KEY_ID not in text
    assert "PRIVATE KEY" not in text
    assert "writer@" not in text


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"anonymous": True, "endpoint": None}, "anonymous"),
        ({"anonymous": True, "service_account_json": '{"private_key": "k-123"}'}, "exclude"),
        ({"service_account_json": '{"private_key": "k-123", '}, "not valid JSON"),
        ({"service_account_json": '{"type": "user", "private_key": "k-123"}'}, "service-account"),
        ({"endpoint": "http://"}, "endpoint"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_validation(
    overrides: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make_destination(**overrides)
    assert names in _refusal(info.value)
    assert "k-123" not in _refusal(info.value)


def test_a_key_the_auth_library_cannot_load_is_a_config_error() -> None:
    key = '{"type": "service_account", "private_key": "k-123"}'
    with pytest.raises(ConfigError, match="not a usable") as info:
        GcsSink(make_destination(service_account_json=key))
    assert "k-123" not in str(info.value)


def _refusal(exc: ValidationError) -> str:
    """What a client is told (the API renders errors without their input)."""
    return "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))


def test_application_default_credentials_are_looked_up_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[object] = []

    def no_credentials(*args: object, **kwargs: object) -> None:
        lookups.append(kwargs)
        raise auth_error(auth.DefaultCredentialsError, "no ADC on this machine")

    monkeypatch.setattr("google.auth.default", no_credentials)
    sink = GcsSink(make_destination())
    assert lookups == []  # building the sink looks nothing up

    with pytest.raises(PermanentError) as info:
        sink._put("k", b"1", content_type="application/json", content_encoding=None)

    assert lookups
    assert info.value.cause == "bad_credentials"
    assert "application default credentials" in str(info.value)
