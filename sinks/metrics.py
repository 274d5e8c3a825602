"""Sink worker metrics (``auditstream_sink_*``).

Counted per batch, labelled by sink type, outcome, state or cause, each a bounded set
(:func:`bounded_cause` folds every other cause into a few). Two gauges carry a ``destination``
label, one series per destination the worker delivers (hundreds per worker at most: see
docs/adr/010-delivery-lanes.md); a worker started with ``--no-destination-metrics`` exports
none.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_DELIVERED = Counter(
    "auditstream_sink_events_delivered_total",
    "Events delivered to destinations, by sink type.",
    ["sink_type"],
)
BYTES_WRITTEN = Counter(
    "auditstream_sink_bytes_written_total",
    "Bytes of objects stored or webhook request bodies accepted, by sink type.",
    ["sink_type"],
)
BATCHES = Counter(
    "auditstream_sink_batches_total",
    "Batch delivery attempts, by sink type and outcome (written, failed).",
    ["sink_type", "outcome"],
)
RETRIES = Counter(
    "auditstream_sink_retries_total",
    "Delivery attempts that failed and will be retried, by sink type and cause.",
    ["sink_type", "cause"],
)
DELIVERY_ERRORS = Counter(
    "auditstream_sink_delivery_errors_total",
    "Failed delivery attempts, by sink type and cause (a bounded set, see bounded_cause).",
    ["sink_type", "cause"],
)
BATCH_WRITE_SECONDS = Histogram(
    "auditstream_sink_batch_write_duration_seconds",
    "Time of one delivery attempt (decode, render, write), by sink type.",
    ["sink_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVENTS_DEAD_LETTERED = Counter(
    "auditstream_sink_events_dead_lettered_total",
    "Records a sink could not decode, sent to the dead-letter topic, by reason.",
    ["reason"],
)
EVENTS_EXPIRED = Counter(
    "auditstream_sink_events_expired_total",
    "Events removed by the topic's retention before they were delivered (offsets on Kafka: "
    "an upper bound), by sink type.",
    ["sink_type"],
)
SUSPENSIONS = Counter(
    "auditstream_sink_suspensions_total",
    "Destinations suspended, by cause (a bounded set).",
    ["cause"],
)
OFFSET_COMMIT_FAILURES = Counter(
    "auditstream_sink_offset_commit_failures_total",
    "Offset commits that failed (retried; the partition sends nothing new meanwhile).",
)
DESTINATIONS = Gauge(
    "auditstream_sink_destinations",
    "Destinations served by this worker, by state.",
    ["state"],
)
BUFFERED_BYTES = Gauge(
    "auditstream_sink_buffered_bytes",
    "Memory estimate of the records held (read and not yet stored), decoded size.",
)
ATTEMPTS_IN_FLIGHT = Gauge(
    "auditstream_sink_attempts_in_flight", "Delivery attempts running on delivery threads."
)
PAUSED_PARTITIONS = Gauge(
    "auditstream_sink_paused_partitions",
    "Destination topic partitions not read now, by reason (held, backoff, lane_full, memory).",
    ["reason"],
)
DESTINATION_LAG = Gauge(
    "auditstream_sink_destination_lag_events",
    "Records of the destination's topic not delivered yet (end offset minus committed "
    "offset; on Kafka transaction markers count too).",
    ["destination"],
)
DESTINATION_OLDEST_AGE = Gauge(
    "auditstream_sink_destination_oldest_undelivered_age_seconds",
    "Age of the oldest record of the destination's topic not delivered yet (0 when none).",
    ["destination"],
)

KNOWN_CAUSES = frozenset(
    {
        "access_denied",
        "address_refused",
        "bad_credentials",
        "bucket_missing",
        "checksum_mismatch",
        "clock_skew",
        "delivery_failed",
        "dlq",
        "internal",
        "invalid_bucket",
        "invalid_config",
        "invalid_path",
        "invalid_request",
        "invalid_url",
        "io_error",
        "kms_key",
        "object_missing",
        "path_outside_root",
        "redirect",
        "region_mismatch",
        "rejected",
        "throttled",
        "timeout",
        "tls_failure",
        "transport",
        "unavailable",
        "unexpected",
        "unreachable",
    }
)
_NAMED_HTTP = frozenset({400, 401, 403, 404, 408, 410, 413, 429, 500, 502, 503, 504})


def bounded_cause(cause: str) -> str:
    """``cause`` as a metric label from a bounded set: a known cause as it is; ``http_<status>``
    for common statuses, else ``http_4xx`` / ``http_5xx`` / ``http_other``; anything else
    ``other``."""
    if cause in KNOWN_CAUSES:
        return cause
    if cause.startswith("http_"):
        digits = cause[len("http_") :]
        if not (digits.isascii() and digits.isdigit()):
            return "other"
        status = int(digits)
        if status in _NAMED_HTTP:
            return f"http_{status}"
        if 400 <= status < 600:
            return f"http_{status // 100}xx"
        return "http_other"
    return "other"
