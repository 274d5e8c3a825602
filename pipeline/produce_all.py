"""Producing a few records and waiting until every one is stored (settings, tokens, status)."""

from __future__ import annotations

from collections.abc import Iterable

from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord


def produce_all(
    log_backend: Log,
    records: Iterable[OutgoingRecord],
    *,
    what: str = "records",
    timeout: float = 30.0,
) -> int:
    """Produce ``records`` with a producer of their own, wait up to ``timeout`` seconds until
    all are stored, and close it. Returns how many were produced.

    Raises :class:`LogError` ("<what> not stored: <first reason>") if any record was refused
    or still undelivered when the time ran out.
    """
    producer = log_backend.producer()
    errors: list[Exception] = []

    def delivered(err: Exception | None, _record: OutgoingRecord) -> None:
        if err is not None:
            errors.append(err)

    count = 0
    try:
        for record in records:
            producer.produce(record, delivered)
            count += 1
        remaining = producer.flush(timeout)
    finally:
        producer.close()
    if errors or remaining:
        raise LogError(f"{what} not stored: {errors[0] if errors else 'flush timed out'}")
    return count
