"""Settings API metrics (``auditstream_api_*``): labelled by method, route template, status,
outcome or reason only (never account, destination or token ids)."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "auditstream_api_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "auditstream_api_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AUTH_FAILURES = Counter(
    "auditstream_api_auth_failures_total",
    "Requests refused before reaching a route, by reason (missing, invalid, forbidden, "
    "other_account).",
    ["reason"],
)
SETTINGS_WRITES = Counter(
    "auditstream_api_settings_writes_total",
    "Settings records with their audit events written atomically, by outcome.",
    ["outcome"],
)
DESTINATIONS_REMOVED = Counter(
    "auditstream_api_destinations_removed_total",
    "Destinations removed from the settings, by how (drained, at_once).",
    ["how"],
)
