"""Builds the sink for a destination's settings."""

from __future__ import annotations

from pathlib import Path

from config.destinations import Destination, LocalDestination, WebhookDestination
from sinks.base import Sink


def build_sink(destination: Destination, *, local_root: Path | None = None) -> Sink:
    """The sink for ``destination``. ``local_root`` anchors relative local paths."""
    if isinstance(destination, LocalDestination):
        from sinks.local_dir import LocalDirectorySink

        return LocalDirectorySink(destination, root=local_root)
    if isinstance(destination, WebhookDestination):
        from sinks.webhook import WebhookSink

        return WebhookSink(destination)
    raise ValueError(f"no sink for destination type {destination.type!r}")
