"""A sink worker imports the vendor SDK modules its destinations need on a thread of its own
while it catches up with its topics, instead of on its first batch."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from auditstream.config.stream import AccountSettings
from auditstream.sinks.worker import _import_sink_modules


def account(*destinations: Mapping[str, object]) -> AccountSettings:
    return AccountSettings.model_validate({"account_id": "acme", "destinations": destinations})


def test_the_modules_of_object_store_destinations_are_imported() -> None:
    s3 = {
        "id": "d1",
        "type": "s3",
        "bucket": "audit-bucket",
        "region": "us-east-1",
    }
    thread = _import_sink_modules([account(s3)])
    thread.join(60)
    assert not thread.is_alive()
    assert "auditstream.sinks.s3" in sys.modules


def test_nothing_to_import_for_local_destinations() -> None:
    local = {"id": "d2", "type": "local", "path": "out"}
    thread = _import_sink_modules([account(local), account()])
    thread.join(60)
    assert not thread.is_alive()
