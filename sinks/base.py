"""The sink contract: what the worker and the destination check need from a destination."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one successful ``write`` delivered, for the worker's metrics."""

    bytes_written: int
    """Bytes of the stored object or of the request body (0 when nothing was sent)."""
    deliveries: int
    """Objects stored or requests answered (a multipart upload is one object)."""


NOTHING_WRITTEN = WriteResult(bytes_written=0, deliveries=0)
"""The result of a batch that needed no delivery (none of its records is an event)."""


@dataclass
class CheckResult:
    """``ok`` and, when not, the one ``cause``; ``message`` says what was found and how to fix
    it; ``steps`` lists what the check did, notes included."""

    ok: bool
    cause: str | None
    message: str
    steps: list[str] = field(default_factory=list)

    @classmethod
    def failure(
        cls, error: DeliveryError, doing: str, steps: list[str], *, cause: str | None = None
    ) -> CheckResult:
        """``doing`` failed with ``error``, reported as ``cause`` (default: the error's own),
        with a last step saying so."""
        cause = cause or error.cause
        steps.append(f"{doing}: failed ({cause})")
        return cls(False, cause, f"{doing} failed: {error}", steps)


class Sink(Protocol):
    """Delivers batches of one destination.

    Writing the same batch twice must be harmless: object stores overwrite the same key,
    webhooks send the same ``Idempotency-Key``. Vendor exceptions never leave a sink: every
    failure of a remote call is a :class:`DeliveryError` subclass naming its ``cause``.
    """

    type: str
    """The destination kind (``s3``, ``gcs``, ``azure_blob``, ``local``, ``webhook``), the
    ``sink_type`` label of the worker's metrics."""

    def write(self, batch: Batch) -> WriteResult:
        """Deliver ``batch`` in exactly one attempt; the worker owns retries and offsets.

        Raises :class:`DeliveryError` (``TransientError`` when another attempt may succeed,
        ``PermanentError`` when the destination refused); on a raise nothing may be counted as
        delivered.
        """

    def probe(self) -> CheckResult:
        """Check that the destination accepts what ``write`` will send, each remote call made
        once. Never raises for a destination problem: the result names its cause, and a
        refusal that delivery does not meet is a note in ``steps``."""

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by ``write``) is worth another attempt. Never raises."""

    def close(self) -> None:
        """Release the connections and clients the sink made (not ones it was given); the
        sink is not used again. Does not raise."""


__all__ = ["NOTHING_WRITTEN", "Batch", "CheckResult", "DeliveryError", "Sink", "WriteResult"]
