"""The destination kinds: one registration line each, and everything that needs "every kind"
iterates :data:`KINDS` (the API's bodies and OpenAPI, the address policy, audit redaction, the
destination check, CLI help, the demo report).

A kind declares its settings model (``config.destinations``: fields typed by role, cross-field
rules as validators, ``nested_addresses`` / ``store_identity`` / ``ambient_credentials_field``),
its title, and how to build its sink. A builder imports its sink module when first called, so a
process that only validates settings (the API) never loads a vendor SDK.

Adding a kind (see ``sinks/README.md``): a model in ``config/destinations.py`` (and in its
``Destination`` union), a sink module implementing ``sinks.base.Sink``, one line below, and its
tests. ``tests/unit/test_destination_registry.py`` fails when a kind misses a facet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import (
    AzureBlobDestination,
    AzureMonitorLogsDestination,
    DatadogLogsDestination,
    Destination,
    GcsDestination,
    LocalDestination,
    S3Destination,
    SplunkHecDestination,
    WebhookDestination,
)
from auditstream.config.fields import unclassified_fields
from auditstream.sinks.base import Sink


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need beyond its settings: ``local_root`` anchors a relative local path;
    ``address_policy`` (when set) is applied by sinks that connect to tenant-chosen hosts."""

    local_root: Path | None = None
    address_policy: AddressPolicy | None = None


SinkBuilder = Callable[[Any, SinkContext], Sink]
"""``(settings, context) -> sink``. Raises :class:`config.errors.ConfigError` for settings that
cannot work on this host (e.g. a CA file that does not load)."""


@dataclass(frozen=True)
class DestinationKind:
    """One destination kind: its settings model, its title, its sink builder."""

    model: type[BaseModel]
    title: str
    build: SinkBuilder

    @property
    def type(self) -> str:
        """The ``type`` tag of the kind's settings (the model's ``type`` default)."""
        return str(self.model.model_fields["type"].default)


# Builders import their sink module when called: vendor SDKs load only where sinks run.
def _local(settings: LocalDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.local_dir import LocalDirectorySink

    return LocalDirectorySink(settings, root=context.local_root)


def _webhook(settings: WebhookDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.webhook import WebhookSink

    return WebhookSink(settings, address_policy=context.address_policy)


def _s3(settings: S3Destination, context: SinkContext) -> Sink:
    from auditstream.sinks.s3 import S3Sink

    return S3Sink(settings, address_policy=context.address_policy)


def _gcs(settings: GcsDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.gcs import GcsSink

    return GcsSink(settings, address_policy=context.address_policy)


def _azure_blob(settings: AzureBlobDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.azure_blob import AzureBlobSink

    return AzureBlobSink(settings, address_policy=context.address_policy)


def _splunk_hec(settings: SplunkHecDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.splunk_hec import SplunkHecSink

    return SplunkHecSink(settings, address_policy=context.address_policy)


def _datadog_logs(settings: DatadogLogsDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.datadog_logs import DatadogLogsSink

    return DatadogLogsSink(settings, address_policy=context.address_policy)


def _azure_monitor_logs(settings: AzureMonitorLogsDestination, context: SinkContext) -> Sink:
    from auditstream.sinks.azure_monitor_logs import AzureMonitorLogsSink

    return AzureMonitorLogsSink(settings, address_policy=context.address_policy)


def _register(*kinds: DestinationKind) -> dict[str, DestinationKind]:
    out: dict[str, DestinationKind] = {}
    for kind in kinds:
        # Fail closed: a text field without a declared role would escape the address policy,
        # path confinement and audit redaction.
        unclassified = unclassified_fields(kind.model)
        if unclassified:
            raise TypeError(
                f"{kind.model.__name__}: fields {unclassified} declare no role; type them with "
                "config.fields (Address, RelativePath, WorkerFile, Text) or SecretStr"
            )
        out[kind.type] = kind
    return out


KINDS: dict[str, DestinationKind] = _register(
    DestinationKind(LocalDestination, "Local directory", _local),
    DestinationKind(WebhookDestination, "HTTPS webhook", _webhook),
    DestinationKind(S3Destination, "Amazon S3", _s3),
    DestinationKind(GcsDestination, "Google Cloud Storage", _gcs),
    DestinationKind(AzureBlobDestination, "Azure Blob Storage", _azure_blob),
    DestinationKind(SplunkHecDestination, "Splunk HTTP Event Collector", _splunk_hec),
    DestinationKind(DatadogLogsDestination, "Datadog Logs", _datadog_logs),
    DestinationKind(AzureMonitorLogsDestination, "Azure Monitor Logs", _azure_monitor_logs),
)
"""Every destination kind, by ``type``."""

DESTINATION_TYPES: tuple[str, ...] = tuple(KINDS)


def union_models() -> set[type[BaseModel]]:
    """The models of the ``Destination`` union (a test holds it equal to the registry's)."""
    union = get_args(Destination)[0]
    return set(get_args(union))


def kind_of(destination: Destination) -> DestinationKind:
    """The kind of ``destination``. Raises ``KeyError`` for a type no kind registers."""
    return KINDS[destination.type]
