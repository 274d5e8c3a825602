"""Router metrics (``auditstream_router_*``); counted per batch where hot."""

from prometheus_client import Counter, Histogram

EVENTS_ROUTED = Counter(
    "auditstream_router_events_routed_total",
    "Events forwarded to destination topics (one per destination copy).",
)
EVENTS_FILTERED = Counter(
    "auditstream_router_events_filtered_total",
    "Events not streamed by the account's settings, by reason.",
    ["reason"],
)
EVENTS_DEAD_LETTERED = Counter(
    "auditstream_router_events_dead_lettered_total",
    "Events the router could not route, sent to the dead-letter topic, by reason.",
    ["reason"],
)
EVENTS_CONSUMED = Counter(
    "auditstream_router_events_consumed_total", "Activity events read by the router."
)
TRANSACTIONS = Counter(
    "auditstream_router_transactions_total",
    "Produce-and-commit transactions, by outcome (committed, aborted).",
    ["outcome"],
)
TRANSACTION_SECONDS = Histogram(
    "auditstream_router_transaction_duration_seconds",
    "Time to produce a routed batch and commit its offsets.",
)
SETTINGS_APPLIED_AT_ONCE = Counter(
    "auditstream_router_settings_applied_at_once_total",
    "Settings changes a router applied at once instead of at their audit event, by reason: "
    "its commit metadata was unreadable or full, or a record's previous settings unreadable.",
    ["reason"],
)
SETTINGS_REVISIONS_MISSING = Counter(
    "auditstream_router_settings_revisions_missing_total",
    "Settings audit events routed before the settings record they name was read (routed "
    "with the settings read so far).",
)
