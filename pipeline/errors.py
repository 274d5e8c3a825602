"""Errors of the log backends and the router."""

from dataclasses import dataclass

from auditstream.errors import AuditstreamError


class LogError(AuditstreamError):
    """The log backend failed (broker unreachable, transaction aborted, database locked...)."""


class TransactionAborted(LogError):
    """A produce-and-commit transaction did not commit; nothing of it is visible. Retry the batch
    from the last committed offsets."""


class FencedError(LogError):
    """Another instance with the same transactional id took over; this one must stop."""


class BrokerUnreachable(LogError):
    """No Kafka broker answered at the bootstrap address in time."""

    def __init__(self, bootstrap: str, timeout_s: float, cause: str | None, hint: str) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.cause = cause
        because = f" ({cause})" if cause else ""
        super().__init__(
            f"no Kafka broker answers at {bootstrap} within {timeout_s:g} s{because}: {hint}"
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """One record a log refused: its position in the records handed over, a stable reason
    code (``too_large``, ``invalid_record``, ``not_authorized``, ...), a human detail, and
    whether producing the same record again can ever succeed (``permanent``)."""

    index: int
    reason: str
    detail: str
    permanent: bool


class RecordRefused(TransactionAborted):
    """The log refused particular records of a transaction, so nothing of it was stored.
    ``refusals`` names them by their index in the records handed over; with a batch-level
    broker error every record of that batch is named, not only the one at fault."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = refusals
        first = refusals[0] if refusals else None
        what = f"{first.reason}: {first.detail}" if first else "no record named"
        super().__init__(f"{len(refusals)} record(s) refused ({what})")


class LogFull(LogError):
    """The log's storage is full (no space left on its file system, or a file size limit
    reached): nothing of the write that raised it was stored, and what was stored before is
    intact. Free space, then retry the same write; the records are not partly there."""

    def __init__(self, path: str, cause: str) -> None:
        self.path = path
        self.cause = cause
        super().__init__(
            f"embedded log {path} is full ({cause}): nothing of this write was stored; "
            "free space on its file system (or raise the file size limit), then retry"
        )
