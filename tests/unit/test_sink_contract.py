"""Every concrete sink implements the whole ``Sink`` contract (``sinks.base``)."""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

import pytest

from auditstream.sinks.azure_blob import AzureBlobSink
from auditstream.sinks.base import Sink
from auditstream.sinks.gcs import GcsSink
from auditstream.sinks.local_dir import LocalDirectorySink
from auditstream.sinks.s3 import S3Sink
from auditstream.sinks.webhook import WebhookSink

SinkClass = type[S3Sink | GcsSink | AzureBlobSink | LocalDirectorySink | WebhookSink]

SINK_TYPES: dict[SinkClass, str] = {
    S3Sink: "s3",
    GcsSink: "gcs",
    AzureBlobSink: "azure_blob",
    LocalDirectorySink: "local",
    WebhookSink: "webhook",
}

CONTRACT_METHODS = ("write", "probe", "is_retryable", "close")


def _as_sink(sink: S3Sink | GcsSink | AzureBlobSink | LocalDirectorySink | WebhookSink) -> Sink:
    """mypy checks here, statically, that each class matches the protocol."""
    return sink


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def test_the_contract_is_what_the_protocol_declares() -> None:
    declared = {name for name in vars(Sink) if not name.startswith("_")}
    assert declared == {*CONTRACT_METHODS}
    assert set(get_type_hints(Sink)) == {"type"}


@pytest.mark.parametrize("cls", list(SINK_TYPES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", CONTRACT_METHODS)
def test_sink_implements_the_method(cls: SinkClass, method: str) -> None:
    implementation = getattr(cls, method)
    declared = getattr(Sink, method)

    assert not getattr(implementation, "__isabstractmethod__", False)
    assert _parameters(implementation) == _parameters(declared)
    assert get_type_hints(implementation) == get_type_hints(declared)


@pytest.mark.parametrize(("cls", "sink_type"), SINK_TYPES.items(), ids=list(SINK_TYPES.values()))
def test_sink_is_concrete_and_names_its_type(cls: SinkClass, sink_type: str) -> None:
    assert not inspect.isabstract(cls)
    assert cls.type == sink_type


def test_sink_types_are_distinct() -> None:
    assert len(set(SINK_TYPES.values())) == len(SINK_TYPES)
