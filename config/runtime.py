"""Process settings (which log, where, metrics port), from flags or ``AUDITSTREAM_*`` env vars.
Validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDITSTREAM_", extra="ignore")

    backend: Literal["embedded", "kafka"] = Field(
        "embedded", description="Log backend: embedded (SQLite file) or kafka."
    )
    embedded_path: Path = Field(
        Path("auditstream.sqlite"), description="SQLite file of the embedded log."
    )
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=0, le=65535)
    activity_partitions: int = Field(1, ge=1, le=1024)
    fault_exit_after_writes: int | None = Field(
        None,
        ge=1,
        description="Fault injection for crash tests: the sink worker exits (code 86) right "
        "after its N-th stored batch, before committing its offset. Never set in production.",
    )
