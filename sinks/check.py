"""Destination check: does a destination accept what its sink will send, and if not, why?

The check builds the destination's own sink and runs its :meth:`Sink.probe`: an object store
writes, overwrites, reads back and deletes a check object (see ``sinks.object_store``); a
webhook POSTs a signed empty batch (see ``sinks.webhook``).

A failure is reported with exactly one cause, the sink's own: ``bucket_missing``,
``access_denied``, ``bad_credentials``, ``region_mismatch``, ``unreachable``, ``tls_failure``
or ``timeout`` for the common ones (``invalid_config`` when no sink can be built from the
settings), and the message says how to fix it. Each remote call is made once: a check answers
fast rather than retrying.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.sinks.base import CheckResult
from auditstream.sinks.factory import build_sink


def check_destination(
    destination: Destination,
    *,
    local_root: Path | None = None,
    address_policy: AddressPolicy | None = None,
) -> CheckResult:
    """Check ``destination`` end to end with its own sink (``local_root`` anchors a relative
    local path; ``address_policy`` is applied to every request, as in delivery). Never raises
    for a destination problem: the result says what it is."""
    try:
        sink = build_sink(destination, local_root=local_root, address_policy=address_policy)
    except ConfigError as exc:
        return CheckResult(False, "invalid_config", str(exc), ["read the settings: invalid"])
    try:
        probed = sink.probe()
    finally:
        sink.close()
    return dataclasses.replace(probed, steps=[f"built the {sink.type} sink", *probed.steps])


__all__ = ["CheckResult", "check_destination"]
