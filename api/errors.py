"""Errors the settings API answers with (mapped to HTTP statuses in ``api.app``)."""

from __future__ import annotations

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
