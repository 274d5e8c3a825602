"""The Azure Blob sink without a network: error mapping (table-driven), settings errors,
client options, and no secret in messages or ``repr``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from pydantic import ValidationError

from auditstream.config.destinations import AzureBlobDestination, account_name_of
from auditstream.sinks.azure_blob import (
    AzureBlobSink,
    classify_azure_error,
    error_code,
)
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError

ACCOUNT_KEY = "dW5pdC10ZXN0LWFjY291bnQta2V5LTNkOWY="
SAS_TOKEN = "sv=2024-08-04&ss=b&srt=co&sp=cw&se=2030-01-01&sig=unit-test-sas-signature"
ACCOUNT_URL = "http://127.0.0.1:9/devstoreaccount1"
NOW = datetime(2026, 11, 26, 6, 13, 10, tzinfo=UTC).timestamp()
SECRETS = (ACCOUNT_KEY, SAS_TOKEN, "unit-test-sas-signature", "string-to-sign")


def no_secret(text: str) -> bool:
    return all(secret not in text for secret in SECRETS)


@dataclass
class FakeResponse:
    """What azure-core reads of a response when it builds an ``HttpResponseError``."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = "Error"
    body: str = ""
    request: Any = None

    def text(self, encoding: str | None = None) -> str:
        return self.body


def storage_error(
    cls: type[HttpResponseError],
    status: int,
    code: str | None,
    *,
    message: str = "This request is not authorized to perform this operation.",
    headers: dict[str, str] | None = None,
    code_in_header_only: bool = False,
) -> HttpResponseError:
    """An error as azure-storage-blob raises it: the service's message (which can quote the
    string it signed), and ``error_code`` set from the ``x-ms-error-code`` header."""
    all_headers = dict(headers or {})
    if code is not None:
        all_headers["x-ms-error-code"] = code
    error = cls(
        message=f"{message}\nstring-to-sign {SAS_TOKEN}\nErrorCode:{code}",
        response=FakeResponse(status, all_headers),
    )
    if code is not None and not code_in_header_only:
        error.error_code = code  # type: ignore[attr-defined]
    return error


def wrapped(cls: type[AzureError], inner: BaseException) -> AzureError:
    return cls(f"failed: {SAS_TOKEN}", error=inner)


def verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "certificate has expired"
    return error


@dataclass(frozen=True)
class Case:
    name: str
    exc: BaseException
    error: type[DeliveryError]
    cause: str
    operation: str = "write"
    retry_after: float | None = None
    hint: str | None = None


AZURITE_AUTH_MESSAGE = (
    "Server failed to authenticate the request. Make sure the value of the Authorization "
    "header is formed correctly including the signature."
)

CASES = [
    # missing container or blob
    Case("container-not-found", storage_error(ResourceNotFoundError, 404, "ContainerNotFound"),
         PermanentError, "bucket_missing", hint="create it"),
    Case("container-not-found-read",
         storage_error(ResourceNotFoundError, 404, "ContainerNotFound"), PermanentError,
         "bucket_missing", operation="read"),
    Case("blob-not-found", storage_error(ResourceNotFoundError, 404, "BlobNotFound"),
         PermanentError, "object_missing", operation="read"),
    Case("404-no-code-write", storage_error(HttpResponseError, 404, None), PermanentError,
         "bucket_missing"),
    Case("code-from-header", storage_error(HttpResponseError, 404, "ContainerNotFound",
                                           code_in_header_only=True),
         PermanentError, "bucket_missing"),
    # credentials
    Case("authentication-failed",
         storage_error(ClientAuthenticationError, 403, "AuthenticationFailed",
                       message=AZURITE_AUTH_MESSAGE),
         PermanentError, "bad_credentials", hint="account_key"),
    Case("azurite-wrong-key",
         storage_error(HttpResponseError, 403, "AuthorizationFailure",
                       message=AZURITE_AUTH_MESSAGE),
         PermanentError, "bad_credentials"),
    Case("invalid-authentication-info",
         storage_error(HttpResponseError, 401, "InvalidAuthenticationInfo"), PermanentError,
         "bad_credentials"),
    Case("cannot-sign", ClientAuthenticationError(f"key is not base64: {ACCOUNT_KEY}"),
         PermanentError, "bad_credentials"),
    # access
    Case("authorization-failure", storage_error(HttpResponseError, 403, "AuthorizationFailure"),
         PermanentError, "access_denied", hint="permission to create and write"),
    Case("permission-mismatch",
         storage_error(HttpResponseError, 403, "AuthorizationPermissionMismatch"),
         PermanentError, "access_denied"),
    Case("permission-mismatch-read",
         storage_error(HttpResponseError, 403, "AuthorizationPermissionMismatch"),
         PermanentError, "access_denied", operation="read", hint="permission to read"),
    Case("403-no-code", storage_error(HttpResponseError, 403, None), PermanentError,
         "access_denied"),
    # busy, throttled, failing
    Case("server-busy", storage_error(HttpResponseError, 503, "ServerBusy",
                                      headers={"Retry-After": "2"}),
         TransientError, "throttled", retry_after=2.0),
    Case("429", storage_error(HttpResponseError, 429, None,
                              headers={"retry-after": "Thu, 26 Nov 2026 06:13:40 GMT"}),
         TransientError, "throttled", retry_after=30.0),
    Case("internal-error", storage_error(HttpResponseError, 500, "InternalError"),
         TransientError, "unavailable"),
    Case("operation-timed-out", storage_error(HttpResponseError, 500, "OperationTimedOut"),
         TransientError, "timeout"),
    Case("502-no-code", storage_error(HttpResponseError, 502, None), TransientError,
         "unavailable"),
    # other refusals
    Case("invalid-header", storage_error(HttpResponseError, 400, "InvalidHeaderValue"),
         PermanentError, "rejected", hint="encryption_scope"),
    # transport
    Case("connection-refused",
         wrapped(ServiceRequestError, ConnectionRefusedError(111, "Connection refused")),
         TransientError, "unreachable"),
    Case("connect-timeout", wrapped(ServiceRequestTimeoutError, TimeoutError()),
         TransientError, "timeout"),
    Case("read-timeout", wrapped(ServiceResponseTimeoutError, TimeoutError()), TransientError,
         "timeout"),
    Case("connection-reset", wrapped(ServiceResponseError, ConnectionResetError()),
         TransientError, "unreachable"),
    Case("tls-verify", wrapped(ServiceRequestError, verify_failure()), PermanentError,
         "tls_failure", hint="certificate has expired"),
    Case("tls-eof", wrapped(ServiceRequestError, ssl.SSLEOFError(8, "EOF")), TransientError,
         "unreachable"),
    Case("incomplete-read", IncompleteReadError(f"cut {SAS_TOKEN}"), TransientError,
         "unreachable"),
    Case("decode-error", DecodeError(f"bad gzip {SAS_TOKEN}"), TransientError, "transport"),
    Case("not-a-vendor-error", RuntimeError(SAS_TOKEN), TransientError, "unexpected"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_classify_azure_error(case: Case) -> None:
    error = classify_azure_error(
        case.exc, target="Azure container 'logs'", operation=case.operation, now=NOW
    )

    assert type(error) is case.error
    assert error.cause == case.cause
    if isinstance(error, TransientError):
        assert error.retry_after == case.retry_after
    message = str(error)
    assert "Azure container 'logs'" in message
    if case.hint is not None:
        assert case.hint in message
    assert no_secret(message)
    assert "not authorized" not in message  # the service's own text is never quoted


def test_error_code_reads_the_enum_value() -> None:
    from azure.storage.blob import StorageErrorCode

    error = storage_error(ResourceNotFoundError, 404, None)
    error.error_code = StorageErrorCode.CONTAINER_NOT_FOUND  # type: ignore[attr-defined]
    assert error_code(error) == "ContainerNotFound"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://auditlogs.blob.core.windows.net", "auditlogs"),
        ("https://auditlogs.blob.core.chinacloudapi.cn/", "auditlogs"),
        ("http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1"),
        ("http://127.0.0.1:10000", None),
    ],
)
def test_account_name_of(url: str, name: str | None) -> None:
    assert account_name_of(url) == name


# -- settings ------------------------------------------------------------------------------------


def make_destination(**overrides: Any) -> AzureBlobDestination:
    settings: dict[str, Any] = {
        "id": "azure-unit",
        "container": "logs",
        "account_url": ACCOUNT_URL,
        "account_key": ACCOUNT_KEY,
        "block_size_bytes": 64 * 1024,
    }
    settings.update(overrides)
    return AzureBlobDestination.model_validate(settings)


CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
    f"BlobEndpoint={ACCOUNT_URL};"
)


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({}, "account_key"),
        ({"account_key": None, "sas_token": SAS_TOKEN}, "sas_token"),
        ({"account_key": None, "sas_token": "?" + SAS_TOKEN}, "sas_token"),
        (
            {"account_key": None, "account_url": None, "connection_string": CONNECTION_STRING},
            "connection_string",
        ),
    ],
)
def test_repr_holds_no_secret_and_retries_are_off(overrides: dict[str, Any], kind: str) -> None:
    sink = AzureBlobSink(make_destination(**overrides))
    text = repr(sink)
    assert f"credentials={kind!r}" in text
    assert "127.0.0.1:9" in text
    assert no_secret(text)
    assert no_secret(sink.container.url)
    config = sink.service._config
    assert getattr(config.retry_policy, "total_retries", None) == 0
    assert config.max_single_put_size == 64 * 1024
    assert config.max_block_size == 64 * 1024


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"account_key": None}, "exactly one"),
        ({"sas_token": SAS_TOKEN}, "exactly one"),
        ({"account_url": None}, "account_url"),
        ({"account_url": f"{ACCOUNT_URL}?{SAS_TOKEN}"}, "without a query"),
        ({"account_url": "http://127.0.0.1:9"}, "account_name"),
        (
            {"account_key": None, "account_url": None, "connection_string": "AccountKey=oops"},
            "connection_string",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_by_validation(
    overrides: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make_destination(**overrides)
    assert names in _refusal(info.value)
    assert no_secret(_refusal(info.value))
    assert "oops" not in _refusal(info.value)


def _refusal(exc: ValidationError) -> str:
    """What a client is told (the API renders errors without their input)."""
    return "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))
