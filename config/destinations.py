"""Destination settings, one model per destination type (discriminated by ``type``).

Each model validates itself: every rule that ties fields together is a validator here whose
message says how to fix the value, so a sink can trust the settings it is given. Every text
field declares what it is by type (``config.fields``): the address policy, path confinement,
secret sealing and audit redaction find the fields they must cover from those types.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import unicodedata
import warnings
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auditstream.config import azure_connection_string, vendor_names
from auditstream.config.fields import (
    Address,
    AddressBearingSecret,
    RelativePath,
    RoleKind,
    Text,
    WorkerFile,
    field_role,
)
from auditstream.config.secrets import PREFIX as SEALED_PREFIX

DESTINATION_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_CONTROL = frozenset(chr(c) for c in range(32)) | {"\x7f"}

# The URLs a service-account key file holds, and the values Google's own key files hold. The
# auth library POSTs a signed assertion to ``token_uri``; a tenant must not choose where.
_GOOGLE_KEY_FILE_URLS: dict[str, tuple[str, ...]] = {
    "token_uri": (
        "https://oauth2.googleapis.com/token",
        "https://accounts.google.com/o/oauth2/token",  # key files made before 2019
    ),
    "auth_uri": ("https://accounts.google.com/o/oauth2/auth",),
    "auth_provider_x509_cert_url": ("https://www.googleapis.com/oauth2/v1/certs",),
    "client_x509_cert_url": (),
}
_ANONYMOUS_AND_KEY = "anonymous and service_account_json exclude each other: remove one"
_GOOGLE_CLIENT_CERTS = "https://www.googleapis.com/robot/v1/metadata/x509/"
_GOOGLE_UNIVERSE = "googleapis.com"

NestedAddress = tuple[str, str]
"""``(field, url)``: an address found inside another field's value."""

UNREADABLE = ""
"""The nested address of a value that cannot be read: the address policy refuses it."""

STORED = {"stored": True}
"""Validation context for settings read back from where they are kept (the settings topic).

The naming and format rules for new input (vendor names, path segments, URL spelling, the
strict reading of connection strings and key files) were added after settings were first
stored; settings stored before them must still load, or their account would stop streaming
and could not even be changed. They are checked where they are used instead: sinks confine
paths and check every request's address, and the API validates every change as new input.
Cross-field rules apply to stored settings too."""


def _new_input(info: ValidationInfo) -> bool:
    """Whether the value being validated is new input (not settings read back)."""
    return not (isinstance(info.context, dict) and info.context.get("stored") is True)


def _url_with_host(value: str | None, field: str, *, strict: bool = True) -> None:
    """Raises ValueError unless ``value`` (when set) is an http(s) URL with a host; when
    ``strict``, also without credentials, whitespace, control characters, backslashes or a host
    that is not ASCII (URL parsers disagree on those: the host a check reads must be the host a
    client reaches), and not on port 0."""
    if value is None:
        return
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        ok = False
    if strict and any(c.isspace() or c in _CONTROL or c == "\\" for c in value):
        ok = False
    if not ok:
        raise ValueError(
            f"{field} must be an http(s) URL with a host, e.g. https://host.example.com"
        )
    if strict and "@" in parts.netloc:
        raise ValueError(
            f"{field} must not carry credentials (user:password@): set them in the "
            "destination's credential fields"
        )
    if strict and not (parts.hostname or "").isascii():
        # Resolvers and HTTP clients encode such names differently (IDNA 2003 and 2008).
        raise ValueError(
            f"{field} must write its host in ASCII: an internationalised domain name in its "
            "xn-- form"
        )
    if strict and parts.port == 0:
        raise ValueError(f"{field} must not use port 0: give the port the receiver listens on")


def _vendor_name(problem: str | None, info: ValidationInfo) -> None:
    """Raises ValueError with ``problem`` (a vendor naming rule) when there is one and the
    value is new input."""
    if problem is not None and _new_input(info):
        raise ValueError(problem)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (no credentials, path or query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _path_segments(value: str, field: str) -> None:
    """Raises ValueError if ``value`` holds control characters, backslashes, a leading ``~``, or
    a ``.``, ``..`` or empty segment (leading and trailing ``/`` aside)."""
    if any(c in _CONTROL for c in value):
        raise ValueError(f"{field} must not contain control characters (NUL, line breaks)")
    if "\\" in value or value.startswith("~"):
        raise ValueError(f"{field} must use / as separator and not start with ~")
    if any(p in (".", "..") for p in value.strip("/").split("/")):
        raise ValueError(f"{field} must not contain . or .. segments")
    if any(not p for p in value.strip("/").split("/")):
        raise ValueError(f"{field} must not contain empty segments (// or only /)")


_TEXT_ROLES = frozenset({RoleKind.TEXT, RoleKind.RELATIVE_PATH, RoleKind.WORKER_FILE})


def _has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (C0, DEL, C1) or a line or paragraph
    separator."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value)


def _secret_texts(value: object) -> list[str]:
    """The plain text of a secret, or of a mapping of secrets."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _secret_texts(v)]
    return []


def _valid_unicode(value: object) -> bool:
    """Whether every secret in ``value`` (a secret, or a mapping of secrets) can be encoded as
    UTF-8."""
    if isinstance(value, SecretStr):
        try:
            value.get_secret_value().encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_valid_unicode(v) for v in value.values())
    return True


def _relative_path(value: str, field: str) -> str:
    """``value`` if it is a relative path that cannot leave its root (empty is the root
    itself); raises ValueError."""
    if value:
        _path_segments(value, field)
    return value


EventSchema = Literal["native", "ocsf", "ecs", "cloudevents"]
"""The event shapes a destination can receive (``sinks.shapes`` registers one renderer for each
name; docs/event-shapes.md describes them)."""

_SCHEMA_DESCRIPTION = (
    "Shape of each delivered event: native (the event as recorded), ocsf (OCSF 1.5.0), ecs "
    "(Elastic Common Schema), cloudevents (CloudEvents 1.0 structured JSON); see "
    "docs/event-shapes.md"
)

# The setting is called ``schema`` in the API and the stored settings, which shadows pydantic's
# deprecated ``BaseModel.schema()``; nothing here calls that method. Only this one warning is
# silenced (the destination models and the API models built from them declare the field).
warnings.filterwarnings(
    "ignore",
    message=r'Field name "schema" in ".*" shadows an attribute in parent "BaseModel"',
    category=UserWarning,
)


class BatchLimits(BaseModel):
    """A batch is written when any limit is reached."""

    model_config = ConfigDict(extra="forbid")

    max_events: int = Field(1000, ge=1, le=1_000_000)
    max_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    max_age_s: float = Field(5.0, gt=0, le=3600)


class Replay(BaseModel):
    """A request to deliver again every event recorded since ``from_time`` (within retention).
    ``id`` makes each request distinct: a worker applies a given id once."""

    model_config = ConfigDict(extra="forbid")

    id: Text = Field(pattern=r"^[A-Za-z0-9._:-]{1,100}$")
    from_time: datetime


class _DestinationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Text = Field(pattern=DESTINATION_ID, description="Unique id; names the destination topic.")
    enabled: bool = True
    paused: bool = Field(False, description="Deliveries held; events wait in the topic.")
    deleting: bool = Field(
        False, description="No new events are routed; removed once its topic is drained."
    )
    replay: Replay | None = None
    batch: BatchLimits = Field(default_factory=BatchLimits)  # type: ignore[arg-type]
    schema: EventSchema = Field(  # type: ignore[assignment]
        "native", description=_SCHEMA_DESCRIPTION
    )

    @field_validator("*")
    @classmethod
    def _storable_secrets(cls, v: object, info: ValidationInfo) -> object:
        # pydantic refuses text that is not valid Unicode in str fields, not inside secrets:
        # such a secret could be neither sealed nor stored nor sent.
        if not _valid_unicode(v):
            raise ValueError(
                f"{info.field_name} must be valid Unicode text (it holds an unpaired surrogate "
                "code point)"
            )
        if _new_input(info) and any(t.startswith(SEALED_PREFIX) for t in _secret_texts(v)):
            raise ValueError(
                f"{info.field_name} must not begin with {SEALED_PREFIX} (it marks a sealed "
                "secret): set the secret itself"
            )
        return v

    @field_validator("*")
    @classmethod
    def _one_line_text(cls, v: object, info: ValidationInfo) -> object:
        # Every text field, found by its role (names, paths, file names): a line break or a
        # control character is never part of one, and a vendor would read it as part of a
        # host name, a path or a header.
        name = info.field_name
        if (
            isinstance(v, str)
            and name is not None
            and _new_input(info)
            and field_role(cls, name) in _TEXT_ROLES
            and _has_control(v)
        ):
            raise ValueError(f"{name} must not contain control characters or line breaks")
        return v

    def nested_addresses(self) -> list[NestedAddress]:
        """Addresses held inside other fields' values (a connection string's endpoints): the
        address policy checks these as it checks ``Address`` fields."""
        return []

    def store_identity(self) -> tuple[str, ...] | None:
        """What this destination writes into; two destinations of one account with the same
        identity would overwrite each other's objects. None for destinations that do not
        store objects."""
        return None

    def ambient_credentials_field(self) -> str | None:
        """The field to set when this destination would use the sink workers' own credentials
        (default chain, instance role); None when it brings its own or needs none."""
        return None

    def unofficial_addresses(self) -> list[NestedAddress]:
        """The nested addresses that are not the vendor's own (a key file's token endpoint
        elsewhere than Google's): only an operator may allow each one, e.g. for an emulator."""
        return []

    def external_id_field(self) -> str | None:
        """The field that must hold the platform's external id for the account when this
        destination assumes a role in the tenant's cloud account (so a tenant cannot name
        another tenant's role: the confused deputy problem); None when it assumes none."""
        return None

    def location(self, local_root: Path | None = None) -> str:
        """Where this destination's objects or requests go, for people (never a secret, a
        URL path or a query)."""
        raise NotImplementedError


class _ObjectStoreBase(_DestinationBase):
    format: Literal["ndjson", "avro"] = "ndjson"
    compression: Literal["gzip", "zstd", "none", "deflate", "snappy"] = "gzip"
    prefix: RelativePath = Field("auditstream", max_length=512)

    @field_validator("prefix")
    @classmethod
    def _strip_slashes(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip("/")
        return _relative_path(v, "prefix") if _new_input(info) else v

    @model_validator(mode="after")
    def _format_and_compression(self) -> Self:
        if self.format == "ndjson" and self.compression not in ("gzip", "zstd", "none"):
            raise ValueError(
                "compression: ndjson supports gzip, zstd or none compression: choose one of "
                "those, or format avro"
            )
        if self.format == "avro" and self.schema != "native":
            raise ValueError(
                f"schema: {self.schema} is a JSON shape and format avro holds the native event "
                "(the Avro schema embedded in each object): use format ndjson with schema "
                f"{self.schema}, or schema native with format avro"
            )
        return self

    def _identity(self, *where: str) -> tuple[str, ...]:
        return (self.type, *where, self.prefix)  # type: ignore[attr-defined]


class LocalDestination(_ObjectStoreBase):
    """Objects written as files under ``path`` (same key layout as the object stores)."""

    type: Literal["local"] = "local"
    path: RelativePath = Field(
        min_length=1, description="Directory; relative paths are under the workers' local root."
    )

    @field_validator("path")
    @classmethod
    def _plain_path(cls, v: str, info: ValidationInfo) -> str:
        if _new_input(info):
            _path_segments(v, "path")
        return v

    def store_identity(self) -> tuple[str, ...] | None:
        return self._identity(posixpath.normpath(self.path))

    def location(self, local_root: Path | None = None) -> str:
        path = Path(self.path)
        return str(path if path.is_absolute() or local_root is None else local_root / path)


_WHSEC_HINT = (
    "it must be 'whsec_' followed by the base64 of 24 to 64 random bytes; make one with "
    "python -c \"import base64, os; print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
)


def _is_whsec(secret: str) -> bool:
    """Whether ``secret`` is a Standard Webhooks secret: ``whsec_`` followed by standard base64
    of 24 to 64 bytes (the rule :func:`auditstream.sinks.signature.standard_key` applies)."""
    prefix, _, encoded = secret.partition("_")
    if prefix != "whsec" or not encoded.isascii():
        return False
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        return False
    return 24 <= len(key) <= 64


class WebhookDestination(_DestinationBase):
    """HTTPS POSTs of JSON batches, signed with HMAC-SHA256 over timestamp and body, or the
    Standard Webhooks way (signing: standard_webhooks, whsec_ secrets)."""

    type: Literal["webhook"] = "webhook"
    url: Address = Field(
        pattern=r"^https?://", description="Endpoint; https unless allowed otherwise"
    )
    secret: SecretStr = Field(description="HMAC-SHA256 signing secret shared with the receiver")
    body: Literal["json_array", "ndjson"] = "json_array"
    timeout_s: float = Field(10.0, gt=0, le=120)
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers; values are sealed at rest."
    )
    verify_tls: bool = True
    ca_file: WorkerFile | None = None
    signing: Literal["auditstream", "standard_webhooks"] = Field(
        "auditstream",
        description="Signature headers: 'auditstream' (X-Auditstream-Signature) or "
        "'standard_webhooks' (webhook-id, webhook-timestamp, webhook-signature; the secrets "
        "must then be whsec_ secrets)",
    )
    next_secret: SecretStr | None = Field(
        None,
        description="During a secret rotation, the receiver's new secret: every request is "
        "signed with both secrets until this one replaces 'secret'",
    )

    @field_validator("secret")
    @classmethod
    def _real_secret(cls, v: SecretStr, info: ValidationInfo) -> SecretStr:
        if not v.get_secret_value().strip() and _new_input(info):
            raise ValueError("secret must not be empty or blank: set the receiver's signing secret")
        return v

    @model_validator(mode="after")
    def _signing_secrets(self, info: ValidationInfo) -> Self:
        next_secret = self.next_secret
        blank = next_secret is not None and not next_secret.get_secret_value().strip()
        if blank and _new_input(info):
            raise ValueError("next_secret must not be empty or blank: leave it unset instead")
        if self.signing == "standard_webhooks" and _new_input(info):
            for name, value in (("secret", self.secret), ("next_secret", next_secret)):
                if value is not None and not _is_whsec(value.get_secret_value()):
                    raise ValueError(f"{name} is not a Standard Webhooks secret: {_WHSEC_HINT}")
        return self

    @model_validator(mode="after")
    def _usable_url(self, info: ValidationInfo) -> Self:
        _url_with_host(self.url, "url", strict=_new_input(info))
        return self

    @model_validator(mode="after")
    def _cloudevents_batch(self) -> Self:
        if self.schema == "cloudevents" and self.body != "json_array":
            raise ValueError(
                "schema: cloudevents is sent as a CloudEvents JSON batch (a JSON array, "
                "Content-Type application/cloudevents-batch+json): use body json_array"
            )
        return self

    def location(self, local_root: Path | None = None) -> str:
        parts = urlsplit(self.url)
        return f"POST {parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


class S3Destination(_ObjectStoreBase):
    """Amazon S3 or an S3-compatible store. Credentials: static keys, else the default chain
    (env, profile, instance role); ``role_arn`` assumes a role, refreshed before it expires."""

    type: Literal["s3"] = "s3"
    bucket: Text = Field(min_length=3, max_length=63)
    region: Text | None = None
    endpoint_url: Address | None = Field(None, description="S3-compatible endpoint (path-style)")
    force_path_style: bool = False
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    role_arn: Text | None = None
    external_id: Text | None = Field(
        None,
        description="Set by the platform when role_arn is set: the account's external id "
        "(GET /v1/accounts/{account_id}/aws-external-id), for the role's trust policy.",
    )
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: Text | None = None
    multipart_threshold_bytes: int = Field(
        16 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024**3,
        description="Objects this large or larger are uploaded in parts (5 MiB to 5 GiB, the "
        "largest single upload S3 takes)",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str, info: ValidationInfo) -> str:
        _vendor_name(vendor_names.s3_bucket(v), info)
        return v

    @field_validator("region")
    @classmethod
    def _region_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:  # the rule of S3-compatible stores; Amazon's is checked below
            _vendor_name(vendor_names.aws_region(v, custom_endpoint=True), info)
        return v

    @field_validator("kms_key_id")
    @classmethod
    def _kms_key(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:  # the rule of S3-compatible stores; Amazon's is checked below
            _vendor_name(vendor_names.kms_key_id(v, custom_endpoint=True), info)
        return v

    @field_validator("role_arn")
    @classmethod
    def _role(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _vendor_name(vendor_names.role_arn(v), info)
        return v

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _vendor_name(vendor_names.external_id(v), info)
        return v

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        _url_with_host(self.endpoint_url, "endpoint_url", strict=_new_input(info))
        if self.endpoint_url is None:  # Amazon S3 itself: its stricter rules
            if self.region is not None:
                _vendor_name(vendor_names.aws_region(self.region, custom_endpoint=False), info)
            if self.kms_key_id is not None:
                key_rule = vendor_names.kms_key_id(self.kms_key_id, custom_endpoint=False)
                _vendor_name(key_rule, info)
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError(
                "kms_key_id is set but sse is not aws:kms: set sse to aws:kms, or remove kms_key_id"
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "set both access_key_id and secret_access_key, or neither (to use the default "
                "credential chain)"
            )
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("external_id is only used with role_arn: set role_arn or remove it")
        return self

    def store_identity(self) -> tuple[str, ...] | None:
        return self._identity((self.endpoint_url or "").rstrip("/").lower(), self.bucket)

    def location(self, local_root: Path | None = None) -> str:
        at = f" at {_origin(self.endpoint_url)}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{at}"

    def ambient_credentials_field(self) -> str | None:
        static = self.access_key_id is not None and self.secret_access_key is not None
        return None if static or self.role_arn is not None else "access_key_id"

    def external_id_field(self) -> str | None:
        return "external_id" if self.role_arn is not None else None


class GcsDestination(_ObjectStoreBase):
    """Google Cloud Storage. Credentials: a service-account JSON, else application default
    credentials; ``anonymous`` only for an emulator ``endpoint``."""

    type: Literal["gcs"] = "gcs"
    bucket: Text = Field(min_length=3, max_length=222)
    project: Text | None = None
    endpoint: Address | None = Field(None, description="emulator or private endpoint URL")
    service_account_json: AddressBearingSecret | None = None
    anonymous: bool = False
    kms_key_name: Text | None = None
    resumable_threshold_bytes: int = Field(
        8 * 1024 * 1024,
        ge=256 * 1024,
        le=5 * 1024**4,
        description="Objects this large or larger are uploaded resumably (256 KiB to 5 TiB, "
        "the largest object Cloud Storage takes)",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str, info: ValidationInfo) -> str:
        _vendor_name(vendor_names.gcs_bucket(v), info)
        return v

    @field_validator("project")
    @classmethod
    def _project(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:  # the rule of emulators; Google's is checked below
            _vendor_name(vendor_names.gcs_project(v, custom_endpoint=True), info)
        return v

    @field_validator("kms_key_name")
    @classmethod
    def _kms_key(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _vendor_name(vendor_names.gcs_kms_key_name(v), info)
        return v

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_authenticate(cls, data: object) -> object:
        # Before the key file itself is read: with both set, which one to remove comes first.
        if (
            isinstance(data, dict)
            and data.get("anonymous") is True
            and data.get("service_account_json") is not None
        ):
            raise ValueError(_ANONYMOUS_AND_KEY)
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        _url_with_host(self.endpoint, "endpoint", strict=_new_input(info))
        if self.endpoint is None and self.project is not None:  # Google Cloud itself
            _vendor_name(vendor_names.gcs_project(self.project), info)
        if self.anonymous:
            if self.service_account_json is not None:
                raise ValueError(_ANONYMOUS_AND_KEY)
            if self.endpoint is None:
                raise ValueError(
                    "anonymous is only for an emulator: set endpoint, or remove anonymous"
                )
        return self

    @field_validator("service_account_json")
    @classmethod
    def _key_file(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if v is not None:
            _service_account_info(v.get_secret_value(), strict=_new_input(info))
        return v

    def _service_account(self) -> dict[str, object] | None:
        """The key file, read as new input is. Raises ValueError for one stored before the
        strict reading that it does not pass."""
        if self.service_account_json is None:
            return None
        return _service_account_info(self.service_account_json.get_secret_value())

    def nested_addresses(self) -> list[NestedAddress]:
        try:
            info = self._service_account() or {}
        except ValueError:
            return [("service_account_json", UNREADABLE)]
        return [
            ("service_account_json", str(info[k]))
            for k in _GOOGLE_KEY_FILE_URLS
            if isinstance(info.get(k), str) and info[k]
        ]

    def unofficial_addresses(self) -> list[NestedAddress]:
        try:
            info = self._service_account() or {}
        except ValueError:
            return [("service_account_json", UNREADABLE)]
        out: list[NestedAddress] = []
        for key, google in _GOOGLE_KEY_FILE_URLS.items():
            value = info.get(key)
            if not isinstance(value, str) or not value:
                continue
            official = (
                value.startswith(_GOOGLE_CLIENT_CERTS) and "?" not in value and "#" not in value
                if key == "client_x509_cert_url"
                else value in google
            )
            if not official:
                out.append(("service_account_json", value))
        return out

    def store_identity(self) -> tuple[str, ...] | None:
        return self._identity((self.endpoint or "").rstrip("/").lower(), self.bucket)

    def location(self, local_root: Path | None = None) -> str:
        at = f" at {_origin(self.endpoint)}" if self.endpoint else ""
        return f"gs://{self.bucket}/{self.prefix}{at}"

    def ambient_credentials_field(self) -> str | None:
        if self.service_account_json is None and not self.anonymous:
            return "service_account_json"
        return None


class AzureBlobDestination(_ObjectStoreBase):
    """Azure Blob Storage. Credentials: a connection string, an account key, or a SAS token."""

    type: Literal["azure_blob"] = "azure_blob"
    container: Text = Field(min_length=3, max_length=63)
    connection_string: AddressBearingSecret | None = None
    account_url: Address | None = Field(None, description="https://<account>.blob.core.windows.net")
    account_name: Text | None = None
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    encryption_scope: Text | None = None
    block_size_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)

    @field_validator("container")
    @classmethod
    def _container_name(cls, v: str, info: ValidationInfo) -> str:
        _vendor_name(vendor_names.azure_container(v), info)
        return v

    @field_validator("account_name")
    @classmethod
    def _account_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _vendor_name(vendor_names.azure_account(v), info)
        return v

    @field_validator("encryption_scope")
    @classmethod
    def _scope(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _vendor_name(vendor_names.azure_encryption_scope(v), info)
        return v

    @field_validator("connection_string")
    @classmethod
    def _trimmed(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Stored trimmed, so the SDK reads exactly what was checked (a pasted string often
        # ends with a line break, which the SDK would read as part of the last value).
        if v is None or not _new_input(info):
            return v
        text = v.get_secret_value()
        _connection_string_parts(text.strip())
        return v if text == text.strip() else SecretStr(text.strip())

    @model_validator(mode="after")
    def _one_credential(self, info: ValidationInfo) -> Self:
        given = [
            name
            for name in ("connection_string", "account_key", "sas_token")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of connection_string, account_key (with account_url) or "
                f"sas_token (with account_url); set: {', '.join(given) or 'none'}"
            )
        if self.connection_string is not None:
            if _new_input(info):
                self._connection_parts()
            return self
        url = self.account_url
        _url_with_host(url, "account_url", strict=_new_input(info))
        if url is None or urlsplit(url).query:
            raise ValueError(
                "account_url must be the account's blob endpoint without a query, e.g. "
                "https://<account>.blob.core.windows.net (a SAS token goes in sas_token)"
            )
        if self.account_key is not None and not (self.account_name or account_name_of(url)):
            raise ValueError("set account_name (it is not in account_url)")
        return self

    def _connection_parts(self) -> dict[str, str]:
        assert self.connection_string is not None
        return _connection_string_parts(self.connection_string.get_secret_value())

    def nested_addresses(self) -> list[NestedAddress]:
        if self.connection_string is None:
            return []
        try:
            parts = self._connection_parts()
        except ValueError:  # stored before the strict reading, and it does not pass it
            return [("connection_string", UNREADABLE)]
        return [("connection_string", url) for url in azure_connection_string.endpoints(parts)]

    def store_identity(self) -> tuple[str, ...] | None:
        account = self.account_name or (self.account_url or "").rstrip("/").lower()
        if self.connection_string is not None:
            try:
                parts = self._connection_parts()
            except ValueError:
                parts = {}
            account = azure_connection_string.account_name(parts) or account
        return self._identity(account, self.container)

    def location(self, local_root: Path | None = None) -> str:
        return f"azure container {self.container}/{self.prefix}"


def _connection_string_parts(text: str) -> dict[str, str]:
    """The parts of an Azure connection string. Raises ValueError saying what is wrong (never
    quoting the string: it holds a key)."""
    try:
        return azure_connection_string.parse(text)
    except ValueError as exc:
        raise ValueError(
            f"connection_string is not a valid storage connection string ({exc}): copy it "
            "again from the storage account's access keys"
        ) from None


def _service_account_info(text: str, *, strict: bool = True) -> dict[str, object]:
    """A service-account key file, parsed. Raises ValueError unless it is one and, when
    ``strict``, its URLs are http(s) URLs with a host and its universe is Google's (never
    quoting the key)."""
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError(
            "service_account_json is not valid JSON: paste the whole key file"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(
            "service_account_json is not a service-account key (its type must be service_account)"
        )
    if not strict:
        return info
    for key in _GOOGLE_KEY_FILE_URLS:
        value = info.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"service_account_json: {key} must be a URL")
        _url_with_host(value, f"service_account_json: {key}")
    universe = info.get("universe_domain", _GOOGLE_UNIVERSE)
    if universe != _GOOGLE_UNIVERSE:
        raise ValueError(
            f"service_account_json: universe_domain must be {_GOOGLE_UNIVERSE} (other "
            "universes are not supported)"
        )
    return info


def account_name_of(account_url: str) -> str | None:
    """The account in ``https://<account>.blob.core.windows.net`` or, for an emulator,
    ``http://127.0.0.1:10000/<account>``."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0] or None
    first = parts.path.strip("/").split("/", 1)[0]
    return first or None


# -- SIEM collectors ------------------------------------------------------------------------------

_SPLUNK_INDEX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_SPLUNK_PATHS = (
    "/services/collector",
    "/services/collector/event",
    "/services/collector/event/1.0",
    "/services/collector/raw",
)
_DATADOG_TAG = re.compile(r"^[^\s,\x00-\x1f\x7f]{1,200}$")
_DATADOG_API_KEY = re.compile(r"^[A-Za-z0-9]{20,64}$")

DatadogSite = Literal[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
]
"""Datadog's sites, as Datadog names them (``site`` of a Datadog destination)."""

DATADOG_SITES: tuple[str, ...] = get_args(DatadogSite)


def _plain_text(value: str | None, field: str, info: ValidationInfo) -> None:
    """Raises ValueError when ``value`` (new input) holds control characters or line breaks:
    it is copied into every event the collector indexes."""
    if value is not None and _new_input(info) and any(c in _CONTROL for c in value):
        raise ValueError(f"{field} must not contain control characters or line breaks")


def _collector_base_url(url: str, field: str, info: ValidationInfo) -> None:
    """Raises ValueError unless ``url`` is an http(s) base URL with a host and no query or
    fragment (a token in a query would be logged by proxies; the sink adds the paths)."""
    strict = _new_input(info)
    _url_with_host(url, field, strict=strict)
    if not strict:
        return
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(
            f"{field} must not have a query or fragment: credentials go in their own field"
        )


class SplunkHecDestination(_DestinationBase):
    """Splunk HTTP Event Collector: batches POSTed to ``{url}/services/collector/event`` as
    concatenated JSON event objects (``time`` from ``occurred_at``, the event as ``event``),
    with ``Authorization: Splunk <token>``, gzip-compressed by default. With ``ack``, a batch
    counts as delivered only once Splunk confirms it was indexed (indexer acknowledgement)."""

    type: Literal["splunk_hec"] = "splunk_hec"
    url: Address = Field(
        pattern=r"^https?://",
        description="HEC base URL, e.g. https://splunk.example.com:8088 (the sink adds "
        "/services/collector/...)",
    )
    token: SecretStr = Field(description="HEC token, sent as Authorization: Splunk <token>")
    index: Text | None = Field(None, description="Index; omit for the token's default index")
    source: Text = Field("auditstream", min_length=1, max_length=512)
    sourcetype: Text = Field("auditstream:activity", min_length=1, max_length=512)
    host: Text | None = Field(None, max_length=512, description="Omit for Splunk's default")
    gzip: bool = True
    ack: bool = Field(
        False, description="Wait for indexer acknowledgement (the token must have it enabled)"
    )
    ack_timeout_s: float = Field(60.0, gt=0, le=600)
    max_request_bytes: int = Field(
        1_000_000,
        ge=64 * 1024,
        le=800 * 1024 * 1024,
        description="Uncompressed bytes per request at most (HEC's max_content_length)",
    )
    timeout_s: float = Field(10.0, gt=0, le=120)
    verify_tls: bool = True
    ca_file: WorkerFile | None = None

    @field_validator("token")
    @classmethod
    def _real_token(cls, v: SecretStr, info: ValidationInfo) -> SecretStr:
        text = v.get_secret_value()
        printable = text.isascii() and text.isprintable()
        if _new_input(info) and (not printable or not text or any(c.isspace() for c in text)):
            raise ValueError(
                "token must be the HEC token (visible ASCII), without spaces or the word Splunk"
            )
        return v

    @field_validator("index")
    @classmethod
    def _index_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and _new_input(info) and not _SPLUNK_INDEX.match(v):
            raise ValueError(
                "index must be 1-80 lower-case letters, digits, underscores and hyphens, "
                "beginning with a letter or digit (Splunk index naming rules)"
            )
        return v

    @field_validator("source", "sourcetype", "host")
    @classmethod
    def _no_control(cls, v: str | None, info: ValidationInfo) -> str | None:
        _plain_text(v, str(info.field_name), info)
        return v

    @model_validator(mode="after")
    def _usable_url(self, info: ValidationInfo) -> Self:
        _collector_base_url(self.url, "url", info)
        if _new_input(info) and urlsplit(self.url).path.rstrip("/") in _SPLUNK_PATHS:
            raise ValueError(
                "url is the HEC base URL: remove /services/collector... (the sink adds it)"
            )
        return self

    def location(self, local_root: Path | None = None) -> str:
        index = f" (index {self.index})" if self.index else ""
        return f"Splunk HEC at {_origin(self.url)}{index}"


class DatadogLogsDestination(_DestinationBase):
    """Datadog Logs: batches POSTed as JSON arrays to the v2 logs intake of the Datadog
    ``site`` (``https://http-intake.logs.<site>/api/v2/logs``) with ``DD-API-KEY``,
    gzip-compressed by default, split within the intake's limits (1,000 entries and 5 MB per
    request, 1 MB per entry). Tags ``account_id`` and ``category`` are added to each log."""

    type: Literal["datadog_logs"] = "datadog_logs"
    site: DatadogSite = Field("datadoghq.com", description="The Datadog site of the account")
    endpoint: Address | None = Field(
        None, description="Replaces the site's intake origin (a proxy); omit for Datadog"
    )
    api_key: SecretStr = Field(description="Datadog API key (not an application key)")
    service: Text = Field("auditstream", min_length=1, max_length=100)
    ddsource: Text = Field("auditstream", min_length=1, max_length=100)
    hostname: Text | None = Field(None, max_length=255)
    tags: Text = Field(
        "", max_length=2000, description="Extra tags, comma-separated, e.g. env:prod,team:sec"
    )
    gzip: bool = True
    timeout_s: float = Field(10.0, gt=0, le=120)
    verify_tls: bool = True
    ca_file: WorkerFile | None = None

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, v: SecretStr, info: ValidationInfo) -> SecretStr:
        if _new_input(info) and not _DATADOG_API_KEY.fullmatch(v.get_secret_value()):
            raise ValueError(
                "api_key must be a Datadog API key: letters and digits only (copy it from "
                "Organization Settings > API Keys)"
            )
        return v

    @field_validator("service", "ddsource", "hostname")
    @classmethod
    def _no_control(cls, v: str | None, info: ValidationInfo) -> str | None:
        _plain_text(v, str(info.field_name), info)
        return v

    @field_validator("tags")
    @classmethod
    def _tag_list(cls, v: str, info: ValidationInfo) -> str:
        if v and _new_input(info) and not all(_DATADOG_TAG.match(t) for t in v.split(",")):
            raise ValueError(
                "tags must be comma-separated tags of 1-200 characters each, without spaces "
                "or control characters, e.g. env:prod,team:security"
            )
        return v

    @model_validator(mode="after")
    def _usable_endpoint(self, info: ValidationInfo) -> Self:
        if self.endpoint is not None:
            _collector_base_url(self.endpoint, "endpoint", info)
        return self

    def location(self, local_root: Path | None = None) -> str:
        if self.endpoint is not None:
            return f"Datadog Logs at {_origin(self.endpoint)}"
        return f"Datadog Logs ({self.site})"


# -- Azure Monitor Logs ---------------------------------------------------------------------------

AzureCloud = Literal["public", "usgov", "china"]
"""The Azure clouds an Azure Monitor Logs destination may be in; each fixes the Entra ID
authority and the token scope (``sinks.azure_monitor_logs``), so no tenant names a host that
receives its client secret."""

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
AZURE_TENANT_ID = re.compile(
    rf"^(?:{_GUID}|(?=.{{4,253}}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63})$"
)
"""A directory (tenant) id, or one of the tenant's verified domain names: no path, query or
port can ride in it (it becomes a path segment of the authority's token URL)."""
AZURE_CLIENT_ID = re.compile(rf"^{_GUID}$")
AZURE_DCR_ID = re.compile(r"^dcr-[0-9a-f]{32}$")
"""A data collection rule's immutable id, as Azure shows it (``dcr-`` and 32 hex digits)."""
AZURE_STREAM = re.compile(r"^(?:Custom|Microsoft)-[A-Za-z0-9_]{1,250}$")
"""A stream a data collection rule declares (``Custom-<name>``, or a ``Microsoft-`` stream)."""


class AzureMonitorLogsDestination(_DestinationBase):
    """Azure Monitor Logs (Logs Ingestion API): batches POSTed as JSON arrays to
    ``{endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}`` with a token of
    an Entra ID application (client credentials), gzip-compressed by default, at most 1 MB per
    request. Each event is one row: ``TimeGenerated`` (from ``occurred_at``) and the event's
    top-level fields (or those of the chosen ``schema``)."""

    type: Literal["azure_monitor_logs"] = "azure_monitor_logs"
    endpoint: Address = Field(
        pattern=r"^https?://",
        description="Logs ingestion endpoint of the data collection endpoint (DCE) or of the "
        "rule, e.g. https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com",
    )
    dcr_immutable_id: Text = Field(
        max_length=100, description="The data collection rule's immutable id, dcr-<32 hex digits>"
    )
    stream_name: Text = Field(
        max_length=260, description="The rule's input stream, e.g. Custom-AuditStream_CL"
    )
    tenant_id: Text = Field(
        max_length=253, description="Microsoft Entra directory (tenant) id of the application"
    )
    client_id: Text = Field(max_length=36, description="Application (client) id")
    client_secret: SecretStr = Field(description="A client secret of the application")
    cloud: AzureCloud = Field(
        "public",
        description="The Azure cloud: public (login.microsoftonline.com), usgov or china; "
        "fixes where tokens are requested",
    )
    gzip: bool = True
    timeout_s: float = Field(10.0, gt=0, le=120)
    verify_tls: bool = True
    ca_file: WorkerFile | None = None

    @field_validator("dcr_immutable_id")
    @classmethod
    def _dcr_id(cls, v: str, info: ValidationInfo) -> str:
        if _new_input(info) and not AZURE_DCR_ID.fullmatch(v):
            raise ValueError(
                "dcr_immutable_id must be the rule's immutable id, 'dcr-' followed by 32 "
                "lower-case hex digits (the rule's JSON view shows it as immutableId)"
            )
        return v

    @field_validator("stream_name")
    @classmethod
    def _stream(cls, v: str, info: ValidationInfo) -> str:
        if _new_input(info) and not AZURE_STREAM.fullmatch(v):
            raise ValueError(
                "stream_name must be a stream the rule declares: Custom- (or Microsoft-) "
                "followed by letters, digits and underscores, e.g. Custom-AuditStream_CL"
            )
        return v

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, v: str, info: ValidationInfo) -> str:
        if _new_input(info) and not AZURE_TENANT_ID.fullmatch(v):
            raise ValueError(
                "tenant_id must be the directory (tenant) id, a GUID, or one of the tenant's "
                "domain names, e.g. contoso.onmicrosoft.com"
            )
        return v

    @field_validator("client_id")
    @classmethod
    def _client(cls, v: str, info: ValidationInfo) -> str:
        if _new_input(info) and not AZURE_CLIENT_ID.fullmatch(v):
            raise ValueError("client_id must be the application (client) id, a GUID")
        return v

    @field_validator("client_secret")
    @classmethod
    def _real_secret(cls, v: SecretStr, info: ValidationInfo) -> SecretStr:
        text = v.get_secret_value()
        if _new_input(info) and (not text.strip() or _has_control(text)):
            raise ValueError(
                "client_secret must be the application's client secret (its value, not its id)"
            )
        return v

    @model_validator(mode="after")
    def _usable_endpoint(self, info: ValidationInfo) -> Self:
        _collector_base_url(self.endpoint, "endpoint", info)
        if _new_input(info) and "/dataCollectionRules" in urlsplit(self.endpoint).path:
            raise ValueError(
                "endpoint is the ingestion endpoint's base URL: remove /dataCollectionRules... "
                "(the sink adds the rule and the stream)"
            )
        return self

    def location(self, local_root: Path | None = None) -> str:
        return f"Azure Monitor Logs at {_origin(self.endpoint)} (stream {self.stream_name})"


Destination = Annotated[
    LocalDestination
    | WebhookDestination
    | S3Destination
    | GcsDestination
    | AzureBlobDestination
    | SplunkHecDestination
    | DatadogLogsDestination
    | AzureMonitorLogsDestination,
    Field(discriminator="type"),
]
