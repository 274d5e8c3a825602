"""The sink worker's options: polling, memory cap, retries and suspension, delivery threads,
status intervals, commit retries, fault injection."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditstream.sinks import retry

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    poll_records: int = 2000
    poll_timeout: float = 0.2
    max_buffered_bytes: int = 128 * MiB
    """The cap on records held (read, not yet stored), counted at their decoded size."""
    retry_policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    """Quick retries of a batch (attempts in all, backoff) before its destination is failing."""
    pause_base: float = 1.0
    pause_cap: float = 300.0
    """The backoff of a failing destination doubles from pause_base up to pause_cap (s)."""
    suspend_after: float = 72 * 3600.0
    """A destination failing (or in error) this long is suspended."""
    suspended_retry: float = 900.0
    """A suspended destination is tried again this often (and at once when its settings
    change)."""
    delivery_threads: int = 32
    lane_in_flight: int = 1
    """Attempts in flight per destination: one keeps every destination's batches in order."""
    object_store_in_flight: int = 1
    """Attempts in flight per object-store destination (keys are deterministic, so order does
    not matter there); more than one lets a crash leave several stored batches uncommitted,
    which the next owner may cut differently: an event could then be stored twice."""
    max_queued_batches: int = 8
    """Sealed batches a lane may hold waiting before its partitions stop reading. Not 2: a
    paused partition loses the records the Kafka client fetched ahead, so a lane that paused
    after every poll of 2000 records read each batch twice and waited for every fetch (3.5
    times slower on the peer benchmark, ADR 025); memory stays bounded by
    ``max_buffered_bytes``."""
    drain_timeout: float = 30.0
    """How long stopping waits for attempts in flight (seconds of real time)."""
    status_interval: float = 10.0
    signals_interval: float = 15.0
    destination_metrics: bool = True
    """Export lag and oldest-undelivered age per destination (label ``destination``)."""
    commit_retry_base: float = 0.5
    commit_retry_cap: float = 10.0
    commit_wait: float = 1.0
    """How long (real time) a step waits for an offset commit; one that takes longer is
    reported as stalled and checked again each step (sinks.committer)."""
    exit_after_writes: int | None = None
    """Fault injection for crash tests (see config.runtime): exit right after the N-th stored
    batch, before its offset is committed. Attempts then run one at a time, so that the N-th
    batch is the last one stored."""
