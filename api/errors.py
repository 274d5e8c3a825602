"""Errors the settings API answers with (mapped to HTTP statuses in ``api.app``)."""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from auditstream.errors import AuditstreamError


class ApiProblem(AuditstreamError):
    """A request that cannot be served; ``status`` is the HTTP status. Messages never contain a
    secret."""

    status = 400


class Unauthenticated(ApiProblem):
    status = 401


class NotFound(ApiProblem):
    status = 404


class Conflict(ApiProblem):
    status = 409


class TooManyRequests(ApiProblem):
    """Refused for now; ``retry_after`` seconds later it may be served."""

    status = 429

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ApiProblem):
    """The log could not store or read what the request needs; nothing was changed."""

    status = 503


class Invalid(ApiProblem):
    """Field-level problems: each ``(loc, msg, type)``, ``loc`` starting with ``body``."""

    status = 422

    def __init__(self, errors: Sequence[tuple[Sequence[str | int], str, str]]) -> None:
        self.errors = [(list(loc), msg, kind) for loc, msg, kind in errors]
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg, _ in errors))

    @classmethod
    def field(cls, field: str, msg: str, kind: str = "value_error") -> Invalid:
        return cls([(["body", field], msg, kind)])


def failure_text(exc: BaseException) -> str:
    """``exc`` and the exceptions it was raised from, for a log line: each one's frames and
    type, and the message only of the product's own exceptions (whose messages never hold a
    secret). Other messages often quote values, some of them secrets: pydantic's quote the
    input, ``UnicodeError`` the character and where it was, ``int()`` the text it could not
    read."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        name = f"{kind.__module__}.{kind.__qualname__}"
        own = isinstance(current, AuditstreamError)
        message = str(current) if own else "(message withheld: it may quote values)"
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{name}: {message}")
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return "\n\nraised from:\n".join(parts)
