"""Publishing account settings to the settings topic (and creating destination topics)."""

from __future__ import annotations

from collections.abc import Iterable

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.pipeline.produce_all import produce_all
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
