"""The sink interface: what the worker needs from a destination."""

from __future__ import annotations

from typing import Protocol

from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError


class Sink(Protocol):
    """Delivers batches of one destination.

    ``write`` makes exactly one delivery attempt and raises a :class:`DeliveryError` subclass
    on failure (never a vendor exception); the worker owns retries and offsets. Writing the same
    batch twice must be harmless: object stores overwrite the same key, webhooks send the same
    ``Idempotency-Key``.
    """

    type: str

    def write(self, batch: Batch) -> None: ...

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by ``write``) is worth another attempt."""

    def close(self) -> None: ...


__all__ = ["Batch", "DeliveryError", "Sink"]
