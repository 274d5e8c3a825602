"""Google Cloud Storage: one object per batch through ``google-cloud-storage``.

Objects up to ``resumable_threshold_bytes`` go in one multipart request; larger ones as a
resumable upload sent in chunks. The library's retries are off (``retry=None``):
``sinks.retry`` owns retries. Every vendor exception is mapped onto the project's error tree
at this boundary (:func:`classify_gcs_error`).

Credentials: the destination's service-account JSON, else application default credentials
(looked up on first use, not at start-up: the lookup may ask the metadata server), or none at
all (``anonymous``) for an emulator ``endpoint``. Messages and ``repr`` name the bucket and
the endpoint's host, never the key, and never quote the service's own error text.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import google.auth
import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.oauth2 import service_account

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import GcsDestination
from auditstream.config.errors import ConfigError
from auditstream.sinks import address_guard
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.retry import is_retryable_status, parse_retry_after

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
CHUNK_QUANTUM = 256 * 1024
"""Resumable upload chunks must be a multiple of 256 KiB."""

VENDOR_ERRORS: tuple[type[BaseException], ...] = (
    api.GoogleAPIError,
    auth.GoogleAuthError,
    requests.RequestException,
    InvalidResponse,
    DataCorruption,
)
"""What the library raises for a failed call (everything else is a bug and is not caught)."""

# -- error mapping (pure) -------------------------------------------------------------------------

_FIX_CREDENTIALS = (
    "check the destination's service_account_json (or the application default credentials "
    "of the sink workers)"
)


def _status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _missing(exc: BaseException, *, target: str, operation: str, answered: str) -> DeliveryError:
    # A write creates the object, so only the bucket can be missing. A read or delete says
    # which one in the service's words ("The specified bucket does not exist.").
    text = str(getattr(exc, "message", "") or "").lower()
    if operation != "write" and "bucket does not exist" not in text:
        return PermanentError(f"{target}: no such object{answered}", cause="object_missing")
    return PermanentError(
        f"{target} does not exist{answered}: create it, or fix the destination's bucket (and "
        "endpoint)",
        cause="bucket_missing",
    )


def _classify_status(
    exc: BaseException, status: int, *, target: str, operation: str, now: float
) -> DeliveryError:
    answered = vendor.answered("", status)
    if is_retryable_status(status):
        retry_after = parse_retry_after(vendor.response_header(exc, "Retry-After"), now)
        return vendor.retry_later(target, vendor.retry_kind(status), answered, retry_after)
    if status == 401:
        return PermanentError(
            f"{target} rejected the credentials{answered}: {_FIX_CREDENTIALS}",
            cause="bad_credentials",
        )
    if status == 403:
        role = {
            "read": "storage.objects.get",
            "delete": "storage.objects.delete",
        }.get(operation, "storage.objects.create (and storage.objects.delete to overwrite)")
        return PermanentError(
            f"{target} denied access{answered}: grant the sink's service account {role} on the "
            "bucket (roles/storage.objectUser covers both), and the use of kms_key_name if set",
            cause="access_denied",
        )
    if status == 404:
        return _missing(exc, target=target, operation=operation, answered=answered)
    return vendor.rejected(target, answered, settings="bucket, kms_key_name, endpoint")


def classify_gcs_error(
    exc: BaseException,
    *,
    target: str = "the GCS bucket",
    operation: str = "write",
    now: float | None = None,
) -> DeliveryError:
    """Map a google-cloud-storage (api_core, google-auth, requests) exception to the error
    to raise.

    ``target`` names the bucket in messages; ``operation`` is ``write``, ``read`` or
    ``delete`` (a 404 on a write means the bucket is missing); ``now`` anchors an HTTP-date
    ``Retry-After`` (default: the current time). 429, 408, 5xx, timeouts and connection
    failures are transient; everything the service refused is permanent.
    """
    now = time.time() if now is None else now
    if isinstance(exc, auth.TransportError):
        return TransientError(
            f"could not reach the token endpoint for {target} ({type(exc).__name__}); if this "
            "persists, check that the sink workers reach Google's OAuth endpoint",
            cause="unreachable",
        )
    if isinstance(exc, auth.DefaultCredentialsError):
        return PermanentError(
            f"no usable credentials for {target} ({type(exc).__name__}): set the destination's "
            "service_account_json, or give the sink workers application default credentials",
            cause="bad_credentials",
        )
    if isinstance(exc, auth.GoogleAuthError):
        return PermanentError(
            f"the credentials for {target} were refused ({type(exc).__name__}): {_FIX_CREDENTIALS}",
            cause="bad_credentials",
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return vendor.tls_error(target, vendor.tls_failure(exc), endpoint="the endpoint")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return vendor.connect_timed_out(target)
    if isinstance(exc, requests.exceptions.Timeout):
        return vendor.read_timed_out(target)
    if isinstance(exc, requests.RequestException):
        return TransientError(
            f"could not connect to {target} ({type(exc).__name__}); if this persists, check "
            "that the endpoint is reachable from the sink workers",
            cause="unreachable",
        )
    if isinstance(exc, DataCorruption):
        return TransientError(
            f"the upload to {target} failed its checksum; it will be sent again",
            cause="checksum_mismatch",
        )
    status = _status_of(exc)
    if isinstance(exc, api.GoogleAPICallError | InvalidResponse) and status is not None:
        return _classify_status(exc, status, target=target, operation=operation, now=now)
    return vendor.unexpected(target, exc)


def chunk_size_for(threshold: int) -> int:
    """The resumable upload chunk for ``threshold``: the largest multiple of 256 KiB not above
    it (at least 256 KiB), so an object over the threshold goes in two requests or more."""
    return max(CHUNK_QUANTUM, threshold // CHUNK_QUANTUM * CHUNK_QUANTUM)


# -- the sink --------------------------------------------------------------------------------------


def _credentials(destination: GcsDestination) -> Credentials | None:
    """The credentials the settings name; ``None`` means application default credentials.
    Raises :class:`ConfigError` (never quoting the key) when Google's auth library cannot load
    the key (the settings model has already checked that it is a service-account key)."""
    if destination.anonymous:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if destination.service_account_json is None:
        return None
    info = json.loads(destination.service_account_json.get_secret_value())
    from_info = service_account.Credentials.from_service_account_info
    try:
        credentials: Credentials = from_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            "service_account_json is not a usable service-account key "
            f"({type(exc).__name__}): create a new key for the service account"
        ) from None
    return credentials


class AddressCheckingAdapter(requests.adapters.HTTPAdapter):
    """A requests transport adapter that checks the host of every request against an address
    policy right before sending it (redirects, resumable upload session URLs and token
    requests included): a refused host raises a ``DeliveryError`` and gets no connection."""

    def __init__(self, policy: AddressPolicy, target: str) -> None:
        super().__init__(max_retries=0)
        self._policy = policy
        self._target = target

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        address_guard.check_url(self._policy, str(request.url), target=self._target)
        return super().send(request, *args, **kwargs)


def _checked_session(session: requests.Session, policy: AddressPolicy, target: str) -> None:
    adapter = AddressCheckingAdapter(policy, target)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class GcsSink(ObjectStoreSink):
    """Writes each batch as one object of the destination's bucket. With an
    ``address_policy`` the host of every request is checked right before it is sent: the
    storage requests always, the token requests when the key is the tenant's (its
    ``token_uri`` is the tenant's too); application default credentials are the platform's
    own and fetch their tokens as they always do."""

    type = "gcs"

    def __init__(
        self, destination: GcsDestination, *, address_policy: AddressPolicy | None = None
    ) -> None:
        super().__init__(
            destination_id=destination.id,
            prefix=destination.prefix,
            fmt=destination.format,
            compression=destination.compression,
            schema=destination.schema,
        )
        self._destination = destination
        self.bucket_name = destination.bucket
        host = vendor.host_of(destination.endpoint)
        self._host = host
        self._target = f"GCS bucket {destination.bucket!r}" + (f" at {host}" if host else "")
        self._credentials = _credentials(destination)
        self._address_policy = address_policy
        self.resumable_threshold = destination.resumable_threshold_bytes
        self.chunk_size = chunk_size_for(destination.resumable_threshold_bytes)
        self._timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        self._client: Any | None = None

    def __repr__(self) -> str:
        d = self._destination
        if d.anonymous:
            auth_kind = "anonymous"
        elif d.service_account_json is not None:
            auth_kind = "service_account"
        else:
            auth_kind = "application_default"
        return (
            f"GcsSink(id={d.id!r}, bucket={d.bucket!r}, endpoint={self._host!r}, "
            f"prefix={d.prefix!r}, credentials={auth_kind!r})"
        )

    @property
    def client(self) -> Any:
        """The storage client, built on first use. Raises ``DeliveryError``."""
        if self._client is None:
            d = self._destination
            options = {"api_endpoint": d.endpoint} if d.endpoint else None
            try:
                http = self._checked_http() if self._address_policy is not None else None
                self._client = storage.Client(
                    project=d.project,
                    credentials=http.credentials if http is not None else self._credentials,
                    client_options=options,
                    _http=http,
                )
                # The client fetches bucket metadata for tracing spans on a thread it never
                # joins, retrying after close; we trace nothing with it, and every use of the
                # cache checks that it is set.
                self._client._bucket_metadata_cache = None
            except VENDOR_ERRORS as exc:
                raise self._error(exc, "write") from exc
        return self._client

    def _checked_http(self) -> AuthorizedSession:
        """The session the storage client sends with, every request's host checked; for a
        tenant's key, its token requests too. Raises ``google.auth`` errors when application
        default credentials cannot be found."""
        assert self._address_policy is not None
        credentials = self._credentials
        auth_request = None
        if credentials is None:
            credentials, _project = google.auth.default(scopes=SCOPES)
        elif self._destination.service_account_json is not None:
            token_session = requests.Session()
            _checked_session(token_session, self._address_policy, self._target)
            auth_request = AuthRequest(token_session)
        session = AuthorizedSession(  # type: ignore[no-untyped-call]
            credentials, refresh_timeout=READ_TIMEOUT_S, auth_request=auth_request
        )
        _checked_session(session, self._address_policy, self._target)
        return session

    def _error(self, exc: BaseException, operation: str) -> DeliveryError:
        return classify_gcs_error(exc, target=self._target, operation=operation)

    def _blob(self, key: str) -> Any:
        bucket = self.client.bucket(self.bucket_name)
        return bucket.blob(key, kms_key_name=self._destination.kms_key_name)

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        blob = self._blob(key)
        if content_encoding is not None:
            blob.content_encoding = content_encoding
        try:
            if len(data) <= self.resumable_threshold:
                blob.upload_from_string(
                    data, content_type=content_type, retry=None, timeout=self._timeout
                )
            else:
                # No size given: the library then always uses a resumable upload, sent in
                # chunks of chunk_size (with a size up to 8 MiB it would send one request).
                blob.chunk_size = self.chunk_size
                blob.upload_from_file(
                    io.BytesIO(data), content_type=content_type, retry=None, timeout=self._timeout
                )
        except VENDOR_ERRORS as exc:
            raise self._error(exc, "write") from exc

    def _get(self, key: str) -> bytes:
        """The bytes stored at ``key``, as stored (used by the destination check)."""
        try:
            data = self._blob(key).download_as_bytes(
                raw_download=True, retry=None, timeout=self._timeout
            )
        except VENDOR_ERRORS as exc:
            raise self._error(exc, "read") from exc
        return bytes(data)

    def _delete(self, key: str) -> None:
        """Delete the object at ``key`` (used by the destination check)."""
        try:
            self._blob(key).delete(retry=None, timeout=self._timeout)
        except VENDOR_ERRORS as exc:
            raise self._error(exc, "delete") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
