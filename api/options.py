"""Options of the settings API service (validated once, at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from auditstream.config.address_policy import AddressPolicy, IPNetwork, Resolver, system_resolver
from auditstream.sinks.registry import DESTINATION_TYPES


@dataclass(frozen=True)
class ApiOptions:
    """Limits and policies of the settings API.

    ``allowed_networks`` are CIDR networks a destination may reach even though they are
    private or loopback (e.g. ``127.0.0.1/32`` in tests, an internal SIEM's subnet).
    ``allow_ambient_credentials`` lets an S3 or GCS destination use the sink workers' own
    credentials (default chain, instance role): off by default, since in a multi-tenant
    deployment those are the platform's, not the tenant's.
    ``allowed_key_file_urls`` are URLs a key file may hold besides the vendor's own (e.g. an
    emulator's token endpoint). ``external_id_key`` derives each account's external id
    (``config.external_id``); without it, destinations cannot assume roles.
    """

    max_destinations: int = 10
    retention: timedelta = timedelta(days=7)
    suspend_after: timedelta = timedelta(days=6)
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_types: tuple[str, ...] = DESTINATION_TYPES
    allow_ambient_credentials: bool = False
    allow_ca_file: bool = False
    max_body_bytes: int = 64 * 1024
    janitor_interval: float = 3.0
    delete_grace: float = 10.0
    """Seconds a deleted destination stays in the settings (``deleting``) at least, and a
    removed destination's topic is kept, so routers and workers have seen the change first."""
    local_root: Path | None = None
    """Where a destination check anchors relative local paths."""
    exact_waiting_limit: int = 10_000
    """On Kafka, backlogs up to this many offsets are counted by reading (exact)."""
    max_concurrent_checks: int = 4
    """Destination checks running at once, in all (one per account at most): each may hold
    one of the API's worker threads for as long as the destination takes to answer."""
    allowed_key_file_urls: tuple[str, ...] = ()
    activity_reads_per_second: float = 20.0
    """Activity audit log reads (search, one event, facets, checkpoint reads, exports) of one
    API token refill at this rate..."""
    activity_read_burst: int = 40
    """...up to this many at once; beyond, 429 with Retry-After."""
    exports_per_account: int = 2
    """Activity exports of one account streaming at once; another one gets 429."""
    activity_read_threads: int = 8
    """Audit store reads of the activity routes running at once, in all (more wait their
    turn): a store that hangs holds this many threads, never those of the settings routes."""
    external_id_key: bytes | None = field(default=None, repr=False)
    resolver: Resolver = field(default=system_resolver, compare=False)

    def __post_init__(self) -> None:
        if self.max_destinations < 1:
            raise ValueError("max_destinations must be at least 1")
        if self.suspend_after <= timedelta(0) or self.retention <= timedelta(0):
            raise ValueError("retention and suspend_after must be positive")
        unknown = sorted(set(self.allowed_types) - set(DESTINATION_TYPES))
        if unknown:
            raise ValueError(f"unknown destination types {unknown}")
        if self.max_concurrent_checks < 1:
            raise ValueError("max_concurrent_checks must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if not self.activity_reads_per_second > 0 or self.activity_read_burst < 1:
            raise ValueError(
                "activity_reads_per_second must be positive and activity_read_burst at least 1"
            )
        if self.exports_per_account < 1 or self.activity_read_threads < 1:
            raise ValueError("exports_per_account and activity_read_threads must be at least 1")

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy(
            allow_http=self.allow_http,
            allowed_networks=self.allowed_networks,
            resolver=self.resolver,
        )
