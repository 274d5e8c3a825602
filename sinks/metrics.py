"""Sink worker metrics (``auditstream_sink_*``): counted per batch, labelled by sink type,
outcome or state only (never destination or account ids: bounded cardinality)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_DELIVERED = Counter(
    "auditstream_sink_events_delivered_total",
    "Events delivered to destinations, by sink type.",
    ["sink_type"],
)
BYTES_WRITTEN = Counter(
    "auditstream_sink_bytes_written_total",
    "Bytes of objects or request bodies delivered, by sink type.",
    ["sink_type"],
)
BATCHES = Counter(
    "auditstream_sink_batches_total",
    "Batch deliveries, by sink type and outcome (written, failed).",
    ["sink_type", "outcome"],
)
RETRIES = Counter(
    "auditstream_sink_retries_total",
    "Delivery attempts retried, by sink type and cause.",
    ["sink_type", "cause"],
)
BATCH_WRITE_SECONDS = Histogram(
    "auditstream_sink_batch_write_duration_seconds",
    "Time to deliver one batch, retries included, by sink type.",
    ["sink_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVENTS_DEAD_LETTERED = Counter(
    "auditstream_sink_events_dead_lettered_total",
    "Records a sink could not decode, sent to the dead-letter topic, by reason.",
    ["reason"],
)
DESTINATIONS = Gauge(
    "auditstream_sink_destinations",
    "Destinations served by this worker, by state (active, failing, error).",
    ["state"],
)
BUFFERED_BYTES = Gauge(
    "auditstream_sink_buffered_bytes", "Bytes of records buffered in open batches."
)
