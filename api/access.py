"""Who may do what (pure).

- Owners and admins of an account may read and change its streaming settings.
- A member with the ``activity_audit`` privilege may read them, not change them.
- Any other member gets 403 on their own account.
- Anyone asking about another account gets 404, exactly as if it did not exist: the API never
  confirms that an account or a destination of another account exists.
"""

from __future__ import annotations

from enum import StrEnum

from auditstream.api.tokens import Principal

WRITE_ROLES = frozenset({"owner", "admin"})
READ_PRIVILEGE = "activity_audit"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(StrEnum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # 403: your account, not your role
    NOT_FOUND = "not_found"  # 404: not your account


def decide(principal: Principal, account_id: str, *, write: bool) -> Access:
    """May ``principal`` read (``write=False``) or change the settings of ``account_id``?"""
    if principal.account_id != account_id:
        return Access.NOT_FOUND
    if principal.role in WRITE_ROLES:
        return Access.ALLOWED
    if not write and READ_PRIVILEGE in principal.privileges:
        return Access.ALLOWED
    return Access.FORBIDDEN


def is_write(method: str) -> bool:
    """Every method but GET/HEAD/OPTIONS acts (a destination check sends a request too)."""
    return method.upper() not in READ_METHODS
