"""The sinks' error tree. Every backend maps its vendor exceptions onto these at its boundary,
so retry decisions (``sinks.retry.is_retryable``) never look at vendor types."""

from auditstream.errors import AuditstreamError


class DeliveryError(AuditstreamError):
    """A batch was not delivered. ``cause`` is a short stable code shown in status and metrics
    labels; the message says what happened and how to fix it (never a secret)."""

    retryable = False
    cause = "delivery_failed"

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause


class TransientError(DeliveryError):
    """Worth retrying: timeouts, connection errors, 5xx, 408, 429, throttling.
    ``retry_after`` is the delay the destination asked for, in seconds, if it said one."""

    retryable = True
    cause = "unavailable"

    def __init__(
        self, message: str, *, cause: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, cause=cause)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """No retry can fix it without a change on the destination's side: rejected request
    (4xx), access denied, bad credentials, missing bucket. The destination goes to ``error``
    and its events wait in its topic."""

    cause = "rejected"
