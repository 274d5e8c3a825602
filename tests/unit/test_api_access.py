"""Access control (pure): roles, the read privilege, and other accounts."""

from __future__ import annotations

import pytest

from auditstream.api.access import Access, decide, is_write
from auditstream.api.tokens import Principal


def _p(role: str, *privileges: str, account: str = "acme") -> Principal:
    return Principal("0123456789abcdef", account, "u-1", role, frozenset(privileges))


@pytest.mark.parametrize(
    ("principal", "account", "write", "expected"),
    [
        (_p("owner"), "acme", True, Access.ALLOWED),
        (_p("owner"), "acme", False, Access.ALLOWED),
        (_p("admin"), "acme", True, Access.ALLOWED),
        (_p("admin"), "acme", False, Access.ALLOWED),
        (_p("member", "activity_audit"), "acme", False, Access.ALLOWED),
        (_p("member", "activity_audit"), "acme", True, Access.FORBIDDEN),
        (_p("member"), "acme", False, Access.FORBIDDEN),
        (_p("member"), "acme", True, Access.FORBIDDEN),
        (_p("member", "something_else"), "acme", False, Access.FORBIDDEN),
        # another account is never confirmed to exist, whatever the role
        (_p("owner"), "globex", False, Access.NOT_FOUND),
        (_p("owner"), "globex", True, Access.NOT_FOUND),
        (_p("member"), "globex", True, Access.NOT_FOUND),
        (_p("member", "activity_audit"), "globex", False, Access.NOT_FOUND),
        (_p("owner"), "ACME", False, Access.NOT_FOUND),
    ],
)
def test_decide(principal: Principal, account: str, write: bool, expected: Access) -> None:
    assert decide(principal, account, write=write) is expected


@pytest.mark.parametrize(
    ("method", "write"),
    [
        ("GET", False),
        ("HEAD", False),
        ("OPTIONS", False),
        ("get", False),
        ("POST", True),
        ("PUT", True),
        ("PATCH", True),
        ("DELETE", True),
    ],
)
def test_is_write(method: str, write: bool) -> None:
    assert is_write(method) is write
