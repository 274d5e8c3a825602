"""Publishing account settings to the settings topic (and creating destination topics).

``publish_settings`` (the ``auditstream settings apply`` command) writes no audit event, so its
records carry no revision and routers apply them as soon as they read them; the settings API
stamps a change and its audit events with one revision (``with_revision``), and routers apply
it at its audit event (docs/adr/017-settings-take-effect-at-their-audit-event.md).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.pipeline.produce_all import produce_all
from auditstream.pipeline.settings_table import REVISION_HEADER
from auditstream.pipeline.topic_setup import ensure_core_topics


def publish_settings(
    log_backend: Log, accounts: Iterable[AccountSettings], box: SecretBox | None = None
) -> int:
    """Write each account's settings (replacing the previous ones). Returns how many.

    Destination topics are created first, so no routed event waits for one. Raises
    :class:`pipeline.errors.LogError` if the log did not store every record.
    """
    ensure_core_topics(log_backend)
    accounts = list(accounts)
    for account in accounts:
        for d in account.destinations:
            log_backend.create_topic(topics.destination_topic(d.id))
    records = (
        OutgoingRecord(
            topic=topics.SETTINGS,
            key=account.account_id.encode(),
            value=encode_settings(account, box),
        )
        for account in accounts
    )
    return produce_all(log_backend, records, what="settings", timeout=60.0)


def new_revision() -> str:
    """A revision for one settings change: unique; routers match it, never order by it."""
    return uuid.uuid4().hex


def with_revision(records: Sequence[OutgoingRecord], revision: str) -> list[OutgoingRecord]:
    """``records`` (a settings record and its audit events, stored in one transaction), each
    with the header naming ``revision``."""
    header = (REVISION_HEADER, revision.encode())
    return [
        dataclasses.replace(r, headers=(*(h for h in r.headers if h[0] != REVISION_HEADER), header))
        for r in records
    ]
