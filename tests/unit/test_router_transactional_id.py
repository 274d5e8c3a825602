"""The router's transactional id: a name kept across restarts, from a template."""

from __future__ import annotations

import socket

import pytest

from auditstream.cli import _transactional_id, build_parser


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (None, None),
        ("router-1", "router-1"),
        ("auditstream-router-{hostname}", f"auditstream-router-{socket.gethostname()}"),
        ("{hostname}-{hostname}", f"{socket.gethostname()}-{socket.gethostname()}"),
    ],
)
def test_template(template: str | None, expected: str | None) -> None:
    assert _transactional_id(template) == expected


def test_environment_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITSTREAM_ROUTER_TRANSACTIONAL_ID", "r-{hostname}")
    args = build_parser().parse_args(["router"])
    assert args.transactional_id == "r-{hostname}"
    monkeypatch.delenv("AUDITSTREAM_ROUTER_TRANSACTIONAL_ID")
    assert build_parser().parse_args(["router"]).transactional_id is None
