"""Object keys (pure). A key depends only on the destination partition, the batch's first
offset and the first record's date, so a replayed batch rewrites the same object: with offsets
committed after the write, every event is stored exactly once (docs/adr/002)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote


def object_key(
    *,
    prefix: str,
    account_id: str,
    record_date: datetime,
    partition: int,
    first_offset: int,
    extension: str,
) -> str:
    """``{prefix}/account={id}/date=YYYY-MM-DD/{partition:03d}-{first_offset:020d}{ext}``.

    Hive-style ``account=`` and ``date=`` segments let Athena, BigQuery external tables and
    Synapse prune by them. The account id is percent-encoded so it can never add a path level.
    """
    if partition < 0 or first_offset < 0:
        raise ValueError("partition and offset must be non-negative")
    account = quote(account_id, safe="")
    name = f"{partition:03d}-{first_offset:020d}{extension}"
    parts = [p for p in (prefix.strip("/"),) if p]
    parts += [f"account={account}", f"date={record_date.date().isoformat()}", name]
    return "/".join(parts)
