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
from auditstream.pipeline.settings_table import (
    PREVIOUS_HEADER,
    PREVIOUS_REVISION_HEADER,
    REVISION_HEADER,
)
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


def with_revision(
    records: Sequence[OutgoingRecord],
    revision: str,
    *,
    previous: bytes | None = None,
    previous_revision: str | None = None,
) -> list[OutgoingRecord]:
    """``records`` (a settings record and its audit events, stored in one transaction), each
    with the header naming ``revision``. ``previous``: the value of the settings record this
    change replaces (sealed as values are; b"" when the account had none) and
    ``previous_revision`` its revision (None: it had none), added to the settings record as
    headers so a restarting router can put them back until the change's audit event (a
    compacted topic may have removed that record). Without ``previous`` a router that starts
    after the change applies it at once."""
    header = (REVISION_HEADER, revision.encode())
    extra: tuple[tuple[str, bytes], ...] = ()
    if previous is not None:
        extra = ((PREVIOUS_HEADER, previous),)
        if previous_revision is not None:
            extra += ((PREVIOUS_REVISION_HEADER, previous_revision.encode()),)
    ours = {REVISION_HEADER, PREVIOUS_HEADER, PREVIOUS_REVISION_HEADER}
    out = []
    for r in records:
        kept = tuple(h for h in r.headers if h[0] not in ours)
        added = (header, *extra) if r.topic == topics.SETTINGS else (header,)
        out.append(dataclasses.replace(r, headers=(*kept, *added)))
    return out
