"""Errors of the audit store (both backends map their driver's exceptions onto these)."""

from auditstream.errors import AuditstreamError


class StoreError(AuditstreamError):
    """The audit store failed (database unreachable, locked, disk full...). Nothing of the
    operation that raised it took effect; it may be retried."""


class StoreUnavailable(StoreError):
    """The store could not be reached or opened; the message says how to fix it."""


class BadCursor(StoreError, ValueError):
    """A cursor or checkpoint a client sent is not one the store made (400, never 5xx)."""


class InvalidEvent(StoreError, ValueError):
    """An event handed to ``append`` lacks a field the store indexes, or holds a value of the
    wrong type; the message names the event's position and the field. Nothing was stored."""
