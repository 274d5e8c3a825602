"""Destination settings, one model per destination type (discriminated by ``type``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DESTINATION_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"


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

    id: str = Field(min_length=1, max_length=100)
    from_time: datetime


class _DestinationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=DESTINATION_ID, description="Unique id; names the destination topic.")
    enabled: bool = True
    paused: bool = Field(False, description="Deliveries held; events wait in the topic.")
    deleting: bool = Field(
        False, description="No new events are routed; removed once its topic is drained."
    )
    replay: Replay | None = None
    batch: BatchLimits = Field(default_factory=BatchLimits)  # type: ignore[arg-type]


class _ObjectStoreBase(_DestinationBase):
    format: Literal["ndjson", "avro"] = "ndjson"
    compression: Literal["gzip", "zstd", "none", "deflate", "snappy"] = "gzip"
    prefix: str = Field("auditstream", max_length=512)

    @field_validator("prefix")
    @classmethod
    def _strip_slashes(cls, v: str) -> str:
        return v.strip("/")


class LocalDestination(_ObjectStoreBase):
    """Objects written as files under ``path`` (same key layout as the object stores)."""

    type: Literal["local"] = "local"
    path: str = Field(min_length=1)


class WebhookDestination(_DestinationBase):
    """HTTPS POSTs of JSON batches, signed with HMAC-SHA256 over timestamp and body."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://", description="Endpoint; https unless allowed otherwise")
    secret: SecretStr = Field(description="HMAC-SHA256 signing secret shared with the receiver")
    body: Literal["json_array", "ndjson"] = "json_array"
    timeout_s: float = Field(10.0, gt=0, le=120)
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers; values are sealed at rest."
    )
    verify_tls: bool = True
    ca_file: str | None = None


class S3Destination(_ObjectStoreBase):
    """Amazon S3 or an S3-compatible store. Credentials: static keys, else the default chain
    (env, profile, instance role); ``role_arn`` assumes a role, refreshed before it expires."""

    type: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    region: str | None = None
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (path-style)")
    force_path_style: bool = False
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    role_arn: str | None = None
    external_id: SecretStr | None = None
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None
    multipart_threshold_bytes: int = Field(16 * 1024 * 1024, ge=5 * 1024 * 1024)


class GcsDestination(_ObjectStoreBase):
    """Google Cloud Storage. Credentials: a service-account JSON, else application default
    credentials; ``anonymous`` only for an emulator ``endpoint``."""

    type: Literal["gcs"] = "gcs"
    bucket: str = Field(min_length=3, max_length=222)
    project: str | None = None
    endpoint: str | None = Field(None, description="emulator or private endpoint URL")
    service_account_json: SecretStr | None = None
    anonymous: bool = False
    kms_key_name: str | None = None
    resumable_threshold_bytes: int = Field(8 * 1024 * 1024, ge=256 * 1024)


class AzureBlobDestination(_ObjectStoreBase):
    """Azure Blob Storage. Credentials: a connection string, an account key, or a SAS token."""

    type: Literal["azure_blob"] = "azure_blob"
    container: str = Field(min_length=3, max_length=63)
    connection_string: SecretStr | None = None
    account_url: str | None = Field(None, description="https://<account>.blob.core.windows.net")
    account_name: str | None = None
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    encryption_scope: str | None = None
    block_size_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)


Destination = Annotated[
    LocalDestination | WebhookDestination | S3Destination | GcsDestination | AzureBlobDestination,
    Field(discriminator="type"),
]
