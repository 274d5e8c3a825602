"""Builds the sink for a destination's settings, through the destination registry."""

from __future__ import annotations

from pathlib import Path

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import Destination
from auditstream.sinks.base import Sink
from auditstream.sinks.registry import SinkContext, kind_of


def build_sink(
    destination: Destination,
    *,
    local_root: Path | None = None,
    address_policy: AddressPolicy | None = None,
) -> Sink:
    """The sink for ``destination``. ``local_root`` anchors relative local paths;
    ``address_policy`` is applied by sinks that connect to tenant-chosen hosts.

    Raises :class:`config.errors.ConfigError` for settings that cannot work on this host.
    Credentials that cannot be found or are refused (default chains, assumed roles) surface
    as a ``DeliveryError`` on the first write, not here.
    """
    context = SinkContext(local_root=local_root, address_policy=address_policy)
    return kind_of(destination).build(destination, context)
