"""Builds the sink for a destination's settings."""

from __future__ import annotations

from pathlib import Path

from auditstream.config.destinations import (
    AzureBlobDestination,
    Destination,
    GcsDestination,
    LocalDestination,
    S3Destination,
    WebhookDestination,
)
from auditstream.sinks.base import Sink


def build_sink(destination: Destination, *, local_root: Path | None = None) -> Sink:
    """The sink for ``destination``. ``local_root`` anchors relative local paths.

    Raises :class:`config.errors.ConfigError` for settings that cannot work together.
    Credentials that cannot be found or are refused (default chains, assumed roles) surface
    as a ``DeliveryError`` on the first write, not here.
    """
    if isinstance(destination, LocalDestination):
        from auditstream.sinks.local_dir import LocalDirectorySink

        return LocalDirectorySink(destination, root=local_root)
    if isinstance(destination, WebhookDestination):
        from auditstream.sinks.webhook import WebhookSink

        return WebhookSink(destination)
    if isinstance(destination, S3Destination):
        from auditstream.sinks.s3 import S3Sink

        return S3Sink(destination)
    if isinstance(destination, GcsDestination):
        from auditstream.sinks.gcs import GcsSink

        return GcsSink(destination)
    if isinstance(destination, AzureBlobDestination):
        from auditstream.sinks.azure_blob import AzureBlobSink

        return AzureBlobSink(destination)
    raise ValueError(f"no sink for destination type {destination.type!r}")
