"""Indexer metrics (``auditstream_indexer_*``); counted per batch."""

from prometheus_client import Counter, Gauge

EVENTS_INDEXED = Counter(
    "auditstream_indexer_events_indexed_total", "Events stored in the audit store."
)
EVENTS_DUPLICATE = Counter(
    "auditstream_indexer_events_duplicate_total",
    "Events read again (a redelivered batch, a replay) that the store already held.",
)
EVENTS_CONFLICTING = Counter(
    "auditstream_indexer_events_conflicting_total",
    "Events read with the id of a stored event of their account but other content: not stored "
    "(the stored event is kept, never replaced); logged with the batch's offsets.",
)
EVENTS_DEAD_LETTERED = Counter(
    "auditstream_indexer_events_dead_lettered_total",
    "Records the indexer could not store, sent to the dead-letter topic, by reason.",
    ["reason"],
)
EVENTS_LEFT_TO_ROUTER = Counter(
    "auditstream_indexer_events_left_to_router_total",
    "Records the router dead-letters (not stored here; a replay brings them back), by reason.",
    ["reason"],
)
RETENTION_DELETED = Counter(
    "auditstream_indexer_retention_deleted_total",
    "Events deleted by retention (past their account's retention period).",
)
STORE_FAILURES = Counter(
    "auditstream_indexer_store_failures_total",
    "Batches the store or the log failed to take; read again after a pause.",
)
RETENTION_RUNS = Counter(
    "auditstream_indexer_retention_runs_total",
    "Retention runs by outcome: complete (nothing expired is left), failed (the store refused; "
    "the next run is one interval later), stopped (the process was stopping).",
    ["outcome"],
)
RETENTION_LAST_COMPLETE = Gauge(
    "auditstream_indexer_retention_last_complete_timestamp_seconds",
    "When this process last completed a retention run (Unix time); absent until one completes.",
)
