"""Destination settings, one model per destination type (discriminated by ``type``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DESTINATION_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class BatchLimits(BaseModel):
    """A batch is written when any limit is reached."""

    model_config = ConfigDict(extra="forbid")

    max_events: int = Field(1000, ge=1, le=1_000_000)
    max_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    max_age_s: float = Field(5.0, gt=0, le=3600)


class _DestinationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=DESTINATION_ID, description="Unique id; names the destination topic.")
    enabled: bool = True
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
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True
    ca_file: str | None = None


Destination = Annotated[LocalDestination | WebhookDestination, Field(discriminator="type")]
