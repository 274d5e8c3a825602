"""Azure Blob Storage: one block blob per batch through ``azure-storage-blob``.

Objects up to ``block_size_bytes`` go in one Put Blob; larger ones are staged as blocks of
that size and committed with one Put Block List, so a reader never sees a partial blob. The
client's retries are off (``retry_total=0``): ``sinks.retry`` owns retries. Every vendor
exception is mapped onto the project's error tree at this boundary
(:func:`classify_azure_error`).

Credentials: a connection string, or ``account_url`` with an account key or a SAS token.
Messages and ``repr`` name the container and the account URL's host, never a key, a SAS
token or a connection string, and never quote the service's own error text (it can carry the
string the service signed).
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContentSettings

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import AzureBlobDestination, account_name_of
from auditstream.config.errors import ConfigError
from auditstream.sinks import address_guard
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.retry import is_retryable_status, parse_retry_after

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60

# -- error mapping (pure) -------------------------------------------------------------------------

_CREDENTIAL_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)
_ACCESS_CODES = frozenset(
    {
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationProtocolMismatch",
        "AuthorizationSourceIPMismatch",
        "InsufficientAccountPermissions",
        "AccountIsDisabled",
        "KeyBasedAuthenticationNotPermitted",
    }
)
_CONTAINER_MISSING_CODES = frozenset({"ContainerNotFound", "ContainerBeingDeleted"})
_BLOB_MISSING_CODES = frozenset({"BlobNotFound"})
_THROTTLED_CODES = frozenset({"ServerBusy"})
_TIMEOUT_CODES = frozenset({"OperationTimedOut"})
_UNAVAILABLE_CODES = frozenset({"InternalError"})

_FIX_CREDENTIALS = (
    "check the destination's connection_string, account_key or sas_token (and that the SAS "
    "token has not expired)"
)


def error_code(exc: BaseException) -> str:
    """The storage error code (``ContainerNotFound``, ...) of ``exc``, or ``""``."""
    code = getattr(exc, "error_code", None)
    value = getattr(code, "value", code)  # azure-storage-blob gives a StorageErrorCode enum
    if isinstance(value, str) and value:
        return value
    return vendor.response_header(exc, "x-ms-error-code") or ""


def _failed_to_authenticate(exc: BaseException) -> bool:
    """Whether the service says it could not authenticate the request. Azure answers a wrong
    key or SAS signature with ``AuthenticationFailed``; Azurite answers it with
    ``AuthorizationFailure`` and this same sentence (Azure's ``AuthorizationFailure`` says
    "not authorized to perform this operation" instead)."""
    return "failed to authenticate" in str(getattr(exc, "message", "") or "").lower()


def _classify_response(
    exc: HttpResponseError, *, target: str, operation: str, now: float
) -> DeliveryError:
    code = error_code(exc)
    status = exc.status_code
    answered = vendor.answered(code, status)
    transient = (
        "throttled"
        if code in _THROTTLED_CODES or status == 429
        else "timeout"
        if code in _TIMEOUT_CODES or status == 408
        else "unavailable"
        if code in _UNAVAILABLE_CODES or (status is not None and is_retryable_status(status))
        else None
    )
    if transient is not None and code not in _CREDENTIAL_CODES | _ACCESS_CODES:
        retry_after = parse_retry_after(vendor.response_header(exc, "Retry-After"), now)
        what = "timed out" if transient == "timeout" else None
        return vendor.retry_later(
            target, transient, answered, retry_after, what=what, health="the account's"
        )
    if (
        code in _CREDENTIAL_CODES
        or status == 401
        or isinstance(exc, ClientAuthenticationError)
        or (code in _ACCESS_CODES and _failed_to_authenticate(exc))
    ):
        return PermanentError(
            f"{target} rejected the credentials{answered}: {_FIX_CREDENTIALS}",
            cause="bad_credentials",
        )
    if code in _ACCESS_CODES or status == 403:
        permission = {"read": "read", "delete": "delete"}.get(operation, "create and write")
        return PermanentError(
            f"{target} denied access{answered}: give the credentials permission to {permission} "
            "blobs in the container (a SAS token needs the matching permissions; check the "
            "account's network rules too)",
            cause="access_denied",
        )
    if code in _CONTAINER_MISSING_CODES or (
        status == 404 and operation == "write" and code not in _BLOB_MISSING_CODES
    ):
        return PermanentError(
            f"{target} does not exist{answered}: create it, or fix the destination's container "
            "(and account)",
            cause="bucket_missing",
        )
    if code in _BLOB_MISSING_CODES or status == 404:
        return PermanentError(f"{target}: no such blob{answered}", cause="object_missing")
    return vendor.rejected(target, answered, settings="container, encryption_scope, account_url")


def classify_azure_error(
    exc: BaseException,
    *,
    target: str = "the Azure container",
    operation: str = "write",
    now: float | None = None,
) -> DeliveryError:
    """Map an azure-core / azure-storage-blob exception to the error to raise.

    ``target`` names the container in messages; ``operation`` is ``write``, ``read`` or
    ``delete`` (a 404 on a write means the container is missing); ``now`` anchors an
    HTTP-date ``Retry-After`` (default: the current time). ServerBusy, 429, 5xx, timeouts
    and connection failures are transient; everything the service refused is permanent.
    """
    now = time.time() if now is None else now
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # A hang-up in the handshake is left to the connection errors below (transient).
        tls = vendor.tls_failure(exc, by_name=True)
        if tls is not None and not tls.hung_up:
            return vendor.tls_error(target, tls, endpoint="the account URL")
        if isinstance(exc, ServiceRequestTimeoutError):
            return vendor.connect_timed_out(target, reachable="the account")
        if isinstance(exc, ServiceResponseTimeoutError):
            return vendor.read_timed_out(target, health="the account's")
        what = (
            "could not connect to"
            if isinstance(exc, ServiceRequestError)
            else ("the connection broke off with")
        )
        return TransientError(
            f"{what} {target} ({type(exc).__name__}); if this persists, check that the account "
            "URL is reachable from the sink workers",
            cause="unreachable",
        )
    if isinstance(exc, IncompleteReadError):
        return TransientError(
            f"the answer of {target} was cut short ({type(exc).__name__})", cause="unreachable"
        )
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # Raised before sending: the account key cannot sign (it is not base64).
        return PermanentError(
            f"the credentials for {target} cannot sign requests ({type(exc).__name__}): "
            f"{_FIX_CREDENTIALS}",
            cause="bad_credentials",
        )
    if isinstance(exc, HttpResponseError) and exc.status_code is None and not error_code(exc):
        return TransientError(
            f"the answer of {target} could not be read ({type(exc).__name__})", cause="transport"
        )
    if isinstance(exc, HttpResponseError):
        return _classify_response(exc, target=target, operation=operation, now=now)
    if isinstance(exc, AzureError):
        return vendor.exchange_failed(target, exc)
    return vendor.unexpected(target, exc)


# -- the sink --------------------------------------------------------------------------------------


class AddressCheckingTransport(RequestsTransport):  # type: ignore[misc]
    """azure-core's requests transport, checking the host of every request against an address
    policy right before sending it: the transport sees each request's final URL (after the
    client picked its location, and for each redirect), so a refused host gets no
    connection. Raises a ``DeliveryError`` for a refused host."""

    def __init__(self, policy: AddressPolicy, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy
        self._target = target

    def send(self, request: Any, **kwargs: Any) -> Any:
        address_guard.check_url(self._policy, str(request.url), target=self._target)
        return super().send(request, **kwargs)


class AzureBlobSink(ObjectStoreSink):
    """Writes each batch as one block blob of the destination's container. With an
    ``address_policy`` the host of every request is checked right before it is sent
    (:class:`AddressCheckingTransport`)."""

    type = "azure_blob"

    def __init__(
        self, destination: AzureBlobDestination, *, address_policy: AddressPolicy | None = None
    ) -> None:
        super().__init__(
            destination_id=destination.id,
            prefix=destination.prefix,
            fmt=destination.format,
            compression=destination.compression,
            schema=destination.schema,
        )
        self._destination = destination
        options: dict[str, Any] = {
            "retry_total": 0,
            "max_single_put_size": destination.block_size_bytes,
            "max_block_size": destination.block_size_bytes,
            "connection_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
        }
        if address_policy is not None:
            options["transport"] = AddressCheckingTransport(
                address_policy,
                f"Azure container {destination.container!r}",
                connection_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
            )
        # The settings model guarantees exactly one credential and a usable account_url.
        service: BlobServiceClient
        if destination.connection_string is not None:
            try:
                service = BlobServiceClient.from_connection_string(
                    destination.connection_string.get_secret_value(), **options
                )
            except (ValueError, KeyError, TypeError):
                raise ConfigError(
                    "connection_string is not a valid storage connection string: "
                    "copy it again from the storage account's access keys"
                ) from None
        else:
            url = destination.account_url
            assert url is not None
            credential: Any
            if destination.account_key is not None:
                name = destination.account_name or account_name_of(url)
                credential = {
                    "account_name": name,
                    "account_key": destination.account_key.get_secret_value(),
                }
            else:
                assert destination.sas_token is not None
                credential = AzureSasCredential(
                    destination.sas_token.get_secret_value().lstrip("?")
                )
            try:
                service = BlobServiceClient(url, credential=credential, **options)
            except (ValueError, TypeError):
                raise ConfigError("account_url is not usable: check it") from None
        self.service = service
        self.container = service.get_container_client(destination.container)
        self._host = vendor.host_of(service.url)
        self._target = f"Azure container {destination.container!r}" + (
            f" at {self._host}" if self._host else ""
        )

    def __repr__(self) -> str:
        d = self._destination
        if d.connection_string is not None:
            auth_kind = "connection_string"
        elif d.account_key is not None:
            auth_kind = "account_key"
        else:
            auth_kind = "sas_token"
        return (
            f"AzureBlobSink(id={d.id!r}, container={d.container!r}, account={self._host!r}, "
            f"prefix={d.prefix!r}, credentials={auth_kind!r})"
        )

    def _error(self, exc: BaseException, operation: str) -> DeliveryError:
        return classify_azure_error(exc, target=self._target, operation=operation)

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        try:
            self.container.upload_blob(
                key,
                data,
                length=len(data),
                overwrite=True,
                content_settings=ContentSettings(
                    content_type=content_type, content_encoding=content_encoding
                ),
                encryption_scope=self._destination.encryption_scope,
                max_concurrency=1,
            )
        except AzureError as exc:
            raise self._error(exc, "write") from exc

    def _get(self, key: str) -> bytes:
        """The bytes stored at ``key`` (used by the destination check)."""
        try:
            # As stored: without decompress=False the SDK would undo a Content-Encoding: gzip.
            download = self.container.download_blob(key, max_concurrency=1, decompress=False)
            return bytes(download.readall())
        except AzureError as exc:
            raise self._error(exc, "read") from exc

    def _delete(self, key: str) -> None:
        """Delete the blob at ``key`` (used by the destination check)."""
        try:
            self.container.delete_blob(key)
        except AzureError as exc:
            raise self._error(exc, "delete") from exc

    def close(self) -> None:
        self.service.close()
