"""Proof that no audit event is lost: each scenario of ``devservices/faults.py`` at CI size (a few
thousand events, a fresh three-broker cluster, the real router and sink worker processes).

Every destination must hold exactly the events its settings include, computed from the
produced events: none lost, none stored twice (a webhook retry with the same Idempotency-Key is
not a duplicate). The table is printed, so the CI log shows it; a router or sink worker that
exits by itself is reported as a warning (the run replaces it, as a supervisor would).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from devservices import faults

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

CI = faults.Options()


@pytest.mark.parametrize(
    "scenario",
    [
        "kill9",
        "brokers",
        # One stream for these two keeps the CI run short; each fault is listed in the table.
        "webhook503+poison",
        "scaling",
    ],
)
def test_no_event_lost_or_duplicated(scenario: str, tmp_path: Path) -> None:
    result = faults.run(scenario, tmp_path / "run", CI)
    print()
    print("\n".join(faults.table([result])))
    for crash in result.crashes:
        warnings.warn(f"{scenario}: {crash}", stacklevel=1)
    assert result.problems == []
    assert result.produced == CI.events
    assert len(result.faults) >= 2
    for dest, count in result.per_destination.items():
        assert count.lost == 0, f"{dest}: {count}"
        assert count.duplicated == 0, f"{dest}: {count}"
        assert count.extra == 0, f"{dest}: {count}"
    assert result.drain_s is not None


def test_expected_counts_follow_the_settings() -> None:
    """The independent inclusion rule against the settings the runs use."""
    raw = faults.account_settings("http://127.0.0.1:1/a", "http://127.0.0.1:1/b")
    events = [
        ("e1", "acct-all", "account", "user_login"),
        ("e2", "acct-cats", "account", "user_login"),
        ("e3", "acct-cats", "connection", "connection_created"),
        ("e4", "acct-excl", "account", "user_login"),
        ("e5", "acct-excl", "team", "team_created"),
        ("e6", "acct-hooks", "account", "user_login"),
        ("e7", "acct-off", "account", "user_login"),
        ("e8", "acct-nobody", "account", "user_login"),
    ]
    expected = faults.expected_per_destination(events, raw)
    assert expected == {
        "all-local": {"e1"},
        "cats-local": {"e2"},
        "excl-local": {"e5"},
        "hooks-local": {"e6"},
        faults.HOOK_A: {"e6"},
        faults.HOOK_B: set(),
        "off-local": set(),
    }
