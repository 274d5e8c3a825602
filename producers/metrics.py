"""Producer metrics."""

from prometheus_client import Counter

EVENTS_PRODUCED = Counter(
    "auditstream_producer_events_total",
    "Activity events reported by the log after produce, by outcome (delivered, failed).",
    ["outcome"],
)
