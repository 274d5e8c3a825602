"""Amazon S3 (and S3-compatible stores): one object per batch through boto3.

The request building is pure (:func:`put_extra_args`); :class:`S3Sink` does the I/O and maps
every vendor exception onto the project's error tree at this boundary
(:func:`classify_s3_error`). botocore's own retries are off: ``sinks.retry`` owns retries.

Credentials: the destination's static keys if given, else botocore's default chain (env,
profile, container or instance role). With ``role_arn`` those credentials only call STS
``AssumeRole``; the assumed-role credentials are refreshed by botocore before they expire
(:func:`assumed_role_credentials`). Messages and ``repr`` name the bucket and the endpoint's
host, never a key, token or external id, and never quote the store's own error text.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import SSLError as BotoSSLError

import auditstream
from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import S3Destination
from auditstream.sinks import address_guard
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.retry import is_retryable_status, parse_retry_after

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
ASSUME_ROLE_SECONDS = 3600
ASSUMED_ROLE_METHOD = "auditstream-assume-role"

# -- error mapping (pure) -------------------------------------------------------------------------

_THROTTLED_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMS.ThrottlingException",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {"ServiceUnavailable", "InternalError", "InternalFailure", "IDPCommunicationError"}
)
_TIMEOUT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "InvalidClientTokenId",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
        "AuthFailure",
    }
)
_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled"})
_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IncorrectEndpoint"}
)
_BUCKET_MISSING_CODES = frozenset({"NoSuchBucket"})
_OBJECT_MISSING_CODES = frozenset({"NoSuchKey"})

_FIX_CREDENTIALS = (
    "check the destination's access_key_id, secret_access_key and session_token (or the "
    "default credential chain of the sink workers)"
)
_FIX_ACCESS = (
    "grant the sink's credentials s3:PutObject on the bucket's prefix (and kms:GenerateDataKey "
    "on the key when sse is aws:kms)"
)
_FIX_ROLE_ACCESS = (
    "check that the role's trust policy lets the sink's base credentials assume it, and that "
    "the destination's external_id matches the one the trust policy requires"
)


def _error_fields(exc: ClientError) -> tuple[str, int | None, Mapping[str, Any], Mapping[str, str]]:
    """The error code, HTTP status, the ``Error`` element and the response headers."""
    response: Mapping[str, Any] = exc.response if isinstance(exc.response, Mapping) else {}
    error = response.get("Error") or {}
    metadata = response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    headers = metadata.get("HTTPHeaders") or {}
    code = str(error.get("Code") or "")
    return code, status if isinstance(status, int) else None, error, headers


_PERMANENT_CODES = (
    _CREDENTIAL_CODES
    | _ACCESS_CODES
    | _REGION_CODES
    | _BUCKET_MISSING_CODES
    | _OBJECT_MISSING_CODES
    | {"RequestTimeTooSkewed", "InvalidBucketName"}
)


def _transient_kind(code: str, status: int | None) -> str | None:
    """``throttled``, ``timeout`` or ``unavailable`` when the answer is worth a retry."""
    if code in _THROTTLED_CODES:
        return "throttled"
    if code in _TIMEOUT_CODES:
        return "timeout"
    if code in _UNAVAILABLE_CODES or code == "NoSuchUpload":
        return "unavailable"
    if code in _PERMANENT_CODES or status is None or not is_retryable_status(status):
        return None
    return vendor.retry_kind(status)


def _classify_client_error(
    exc: ClientError, *, target: str, operation: str, region: str | None, now: float
) -> DeliveryError:
    code, status, error, headers = _error_fields(exc)
    answered = vendor.answered(code, status)
    assuming = getattr(exc, "operation_name", None) == "AssumeRole"
    who = "STS (assuming the destination's role_arn)" if assuming else target

    kind = _transient_kind(code, status)
    if kind is not None:
        retry_after = parse_retry_after(vendor.header(headers, "Retry-After"), now)
        return vendor.retry_later(who, kind, answered, retry_after)
    if code in _CREDENTIAL_CODES or status == 401:
        return PermanentError(
            f"{who} rejected the credentials{answered}: {_FIX_CREDENTIALS}",
            cause="bad_credentials",
        )
    if code in _REGION_CODES or status == 301:
        found = error.get("Region") or vendor.header(headers, "x-amz-bucket-region")
        where = f" in region {found}" if found else " in another region"
        configured = f" (configured: {region})" if region else ""
        fix = (
            f"set the destination's region to {found}" if found else "set the destination's region"
        )
        return PermanentError(
            f"{target} is{where}{configured}{answered}: {fix}, and check endpoint_url",
            cause="region_mismatch",
        )
    if code == "RequestTimeTooSkewed":
        return PermanentError(
            f"{who} rejected the request's time{answered}: the sink worker's clock is off; "
            "synchronise it (NTP)",
            cause="clock_skew",
        )
    if code.startswith("KMS.") or code == "KMSAccessDenied":
        return PermanentError(
            f"{target} could not use the KMS key{answered}: check the destination's kms_key_id "
            "and that the sink's credentials may use that key",
            cause="kms_key",
        )
    if code in _ACCESS_CODES or status == 403:
        if assuming:
            fix = _FIX_ROLE_ACCESS
        elif operation == "read":
            fix = "grant the sink's credentials s3:GetObject on the bucket's prefix"
        elif operation == "delete":
            fix = "grant the sink's credentials s3:DeleteObject on the bucket's prefix"
        else:
            fix = _FIX_ACCESS
        return PermanentError(f"{who} denied access{answered}: {fix}", cause="access_denied")
    missing_on_write = status == 404 and operation == "write" and code not in _OBJECT_MISSING_CODES
    if code in _BUCKET_MISSING_CODES or missing_on_write:
        return PermanentError(
            f"{target} does not exist{answered}: create it, or fix the destination's bucket "
            "(and endpoint_url)",
            cause="bucket_missing",
        )
    if code in _OBJECT_MISSING_CODES or status == 404:
        return PermanentError(f"{target}: no such object{answered}", cause="object_missing")
    if code == "InvalidBucketName":
        return PermanentError(
            f"{target} is not a valid bucket name{answered}: fix the destination's bucket",
            cause="invalid_bucket",
        )
    return vendor.rejected(who, answered, settings="bucket, sse, kms_key_id, endpoint_url")


def classify_s3_error(
    exc: BaseException,
    *,
    target: str = "the S3 bucket",
    operation: str = "write",
    region: str | None = None,
    now: float | None = None,
) -> DeliveryError:
    """Map a boto3/botocore exception to the project's error to raise.

    ``target`` names the bucket in messages (e.g. ``S3 bucket 'logs' at host:port``);
    ``operation`` is ``write``, ``read`` or ``delete`` (a 404 on a write means the bucket is
    missing, on a read the object); ``region`` is the configured one, named in a region
    mismatch; ``now`` anchors an HTTP-date ``Retry-After`` (default: the current time).
    Throttling, 5xx and timeouts are transient; everything the store refused is permanent.
    """
    if isinstance(exc, ClientError):
        return _classify_client_error(
            exc,
            target=target,
            operation=operation,
            region=region,
            now=time.time() if now is None else now,
        )
    if isinstance(exc, BotoSSLError):
        return vendor.tls_error(target, vendor.tls_failure(exc), endpoint="endpoint_url")
    if isinstance(exc, ConnectTimeoutError):
        return vendor.connect_timed_out(target)
    if isinstance(exc, ReadTimeoutError):
        return vendor.read_timed_out(target)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return TransientError(
            f"could not connect to {target} ({type(exc).__name__}); if this persists, check "
            "that the endpoint (endpoint_url, region) is reachable from the sink workers",
            cause="unreachable",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return PermanentError(
            f"no usable credentials for {target} ({type(exc).__name__}): set the destination's "
            "access_key_id and secret_access_key, or give the sink workers default credentials",
            cause="bad_credentials",
        )
    if isinstance(exc, NoRegionError):
        return PermanentError(
            f"no region for {target}: set the destination's region", cause="region_mismatch"
        )
    if isinstance(exc, ParamValidationError):
        return PermanentError(
            f"the request to {target} was invalid ({type(exc).__name__}): check the "
            "destination settings",
            cause="invalid_request",
        )
    if isinstance(exc, BotoCoreError):
        return vendor.exchange_failed(target, exc)
    return vendor.unexpected(target, exc)


def put_extra_args(
    *,
    content_type: str,
    content_encoding: str | None,
    sse: str,
    kms_key_id: str | None,
) -> dict[str, str]:
    """The object parameters of a ``PutObject`` (and of each multipart upload)."""
    extra = {"ContentType": content_type}
    if content_encoding is not None:
        extra["ContentEncoding"] = content_encoding
    if sse != "none":
        extra["ServerSideEncryption"] = sse
        if sse == "aws:kms" and kms_key_id:
            extra["SSEKMSKeyId"] = kms_key_id
    return extra


# -- credentials -------------------------------------------------------------------------------


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def assumed_role_credentials(
    sts: Any,
    *,
    role_arn: str,
    session_name: str,
    external_id: str | None = None,
    duration_s: int = ASSUME_ROLE_SECONDS,
    time_fetcher: Callable[[], datetime] | None = None,
) -> DeferredRefreshableCredentials:
    """Credentials of ``role_arn``, fetched with ``sts.assume_role`` on first use and again
    before they expire (botocore refreshes them ahead of the expiry, under a lock)."""

    def refresh() -> dict[str, str]:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_s,
        }
        if external_id:
            params["ExternalId"] = external_id
        credentials = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": _iso(credentials["Expiration"]),
        }

    if time_fetcher is None:
        return DeferredRefreshableCredentials(refresh, ASSUMED_ROLE_METHOD)
    return DeferredRefreshableCredentials(refresh, ASSUMED_ROLE_METHOD, time_fetcher=time_fetcher)


_SHARED_LOADER: Any = None


def _botocore_session() -> Any:
    """A new botocore session sharing one data loader with every other S3 sink: the loader
    caches the parsed service models, which are most of a session's memory (about 12 MiB each
    without sharing, so 200 S3 destinations would take 2.4 GiB)."""
    global _SHARED_LOADER
    core = botocore.session.Session()
    if _SHARED_LOADER is None:
        _SHARED_LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _SHARED_LOADER)
    return core


class _FixedCredentialProvider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore one credentials object (the assumed role's)."""

    METHOD = ASSUMED_ROLE_METHOD
    CANONICAL_NAME = "AuditstreamAssumeRole"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _client_config(*, region: str | None, path_style: bool) -> Config:
    return Config(
        region_name=region,
        # total_max_attempts counts the first attempt; the older max_attempts counts retries
        # only, so max_attempts=1 would still retry once.
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"} if path_style else None,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra=f"auditstream/{auditstream.__version__}",
    )


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


class S3Sink(ObjectStoreSink):
    """Writes each batch as one object of the destination's bucket.

    Objects up to ``multipart_threshold_bytes`` go in one ``PutObject``; larger ones as a
    multipart upload in parts of that size. ``sts_client`` replaces the STS client used to
    assume ``role_arn`` (tests pass a fake one). With an ``address_policy``, the host of every
    request is checked right before it is sent (botocore's ``before-send`` event), redirects
    and retries included.
    """

    type = "s3"

    def __init__(
        self,
        destination: S3Destination,
        *,
        sts_client: Any | None = None,
        address_policy: AddressPolicy | None = None,
    ) -> None:
        super().__init__(
            destination_id=destination.id,
            prefix=destination.prefix,
            fmt=destination.format,
            compression=destination.compression,
            schema=destination.schema,
        )
        self._destination = destination
        self.bucket = destination.bucket
        # The settings model validated every cross-field rule: this sink trusts it.
        host = vendor.host_of(destination.endpoint_url)
        self._target = f"S3 bucket {destination.bucket!r}" + (f" at {host}" if host else "")
        self._host = host
        access_key = _secret(destination.access_key_id)
        secret_key = _secret(destination.secret_access_key)
        threshold = destination.multipart_threshold_bytes
        self.multipart_threshold = threshold
        self._transfer = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=threshold,
            preferred_transfer_client="classic",
        )
        path_style = destination.force_path_style or destination.endpoint_url is not None
        base = boto3.session.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=_secret(destination.session_token),
            region_name=destination.region,
        )
        session = base
        if destination.role_arn is not None:
            sts = sts_client
            if sts is None:
                sts = base.client(
                    "sts", config=_client_config(region=destination.region, path_style=False)
                )
                self._guard(sts, address_policy, "STS (assuming the destination's role_arn)")
            credentials = assumed_role_credentials(
                sts,
                role_arn=destination.role_arn,
                session_name=f"auditstream-{destination.id}"[:64],
                external_id=destination.external_id,
            )
            core = _botocore_session()
            core.register_component(
                "credential_provider", CredentialResolver([_FixedCredentialProvider(credentials)])
            )
            session = boto3.session.Session(botocore_session=core, region_name=destination.region)
        self.client: Any = session.client(
            "s3",
            endpoint_url=destination.endpoint_url,
            config=_client_config(region=destination.region, path_style=path_style),
        )
        self._guard(self.client, address_policy, self._target)

    @staticmethod
    def _guard(client: Any, policy: AddressPolicy | None, target: str) -> None:
        """Check the host of each request ``client`` sends against ``policy``; a refused host
        raises a ``DeliveryError`` before botocore connects (see ``sinks.address_guard``)."""
        if policy is None:
            return

        def before_send(request: Any, **_: Any) -> None:
            address_guard.check_url(policy, str(request.url), target=target)

        client.meta.events.register("before-send", before_send)

    def __repr__(self) -> str:
        d = self._destination
        return (
            f"S3Sink(id={d.id!r}, bucket={d.bucket!r}, endpoint={self._host!r}, "
            f"region={d.region!r}, prefix={d.prefix!r}, role={d.role_arn is not None})"
        )

    def _error(self, exc: BaseException, operation: str) -> DeliveryError:
        return classify_s3_error(
            exc, target=self._target, operation=operation, region=self._destination.region
        )

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        extra = put_extra_args(
            content_type=content_type,
            content_encoding=content_encoding,
            sse=self._destination.sse,
            kms_key_id=self._destination.kms_key_id,
        )
        try:
            if len(data) <= self.multipart_threshold:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
            else:
                self.client.upload_fileobj(
                    io.BytesIO(data), self.bucket, key, ExtraArgs=extra, Config=self._transfer
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "write") from exc

    def _get(self, key: str) -> bytes:
        """The bytes stored at ``key`` (used by the destination check)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "read") from exc

    def _delete(self, key: str) -> None:
        """Delete the object at ``key`` (used by the destination check)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "delete") from exc

    def close(self) -> None:
        self.client.close()
