"""Errors of the log backends and the router."""

from auditstream.errors import AuditstreamError


class LogError(AuditstreamError):
    """The log backend failed (broker unreachable, transaction aborted, database locked...)."""


class TransactionAborted(LogError):
    """A produce-and-commit transaction did not commit; nothing of it is visible. Retry the batch
    from the last committed offsets."""


class FencedError(LogError):
    """Another instance with the same transactional id took over; this one must stop."""
