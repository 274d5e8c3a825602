"""Errors of the log backends and the router."""

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
