"""Errors of the producer SDK."""

from auditstream.errors import AuditstreamError


class ValidationError(AuditstreamError):
    """An event does not match the catalog or the schema; nothing was sent. ``field`` names the
    offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid event: {field}: {message}")
        self.field = field


class DeliveryFailed(AuditstreamError):
    """The log did not store one or more events (reported by ``flush`` or on close)."""
