"""Proof that no audit event is lost: each scenario of ``devservices/faults.py`` at CI size (a few
thousand events, a fresh three-broker cluster, the real router and sink worker processes).

Every destination must hold exactly the events its settings include, computed from the
produced events: none lost, none stored twice (a webhook retry with the same Idempotency-Key is
not a duplicate). The table is printed, so the CI log shows it; a router or sink worker that
exits by itself is reported as a warning (the run replaces it, as a supervisor would).

``diskfull`` needs no cluster: the embedded log's directory is a tmpfs filled with a file where
this process may mount one, else (an unprivileged CI container) the writing processes' file
size limit is lowered, so a real fill runs either way; the printed table's first note says
which ran and why.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from devservices import faults

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

# The wait for new deliveries outlasts a stalled router's exit and replacement.
CI = faults.Options(stall_s=40.0, min_production_s=12.0)


@pytest.mark.parametrize(
    "scenario",
    [
        "kill9",
        "brokers",
        # One stream for two scenarios keeps the CI run short; each fault is listed.
        "webhook503+poison",
        "scaling+store",
        # The embedded log's directory fills up (no cluster; tmpfs or a file size limit).
        "diskfull",
        # The router is stopped across a settings change: events before its audit event follow
        # the old settings after the restart too (ADR 017).
        "settings",
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
    assert result.faults
    for dest, count in result.per_destination.items():
        assert count.lost == 0, f"{dest}: {count}"
        assert count.duplicated == 0, f"{dest}: {count}"
        assert count.extra == 0, f"{dest}: {count}"
    assert result.drain_s is not None


def test_expected_counts_follow_a_settings_change_by_offset() -> None:
    raw = faults.account_settings("http://127.0.0.1:1/a", "http://127.0.0.1:1/b")
    new = faults.changed_settings(raw)
    events = [
        (10, "r-old", "acct-all", "recipe", "recipe_started"),
        (11, "x-old", "acct-excl", "team", "team_created"),
        (12, "h-old", "acct-hooks", "account", "user_login"),
        (20, "change-all", "acct-all", "account", "audit_log_streaming_data_inclusion"),
        (21, "change-excl", "acct-excl", "account", "audit_log_streaming_destination_updated"),
        (22, "change-hooks", "acct-hooks", "account", "audit_log_streaming_destination_updated"),
        (30, "r-new", "acct-all", "recipe", "recipe_started"),
        (31, "x-new", "acct-excl", "team", "team_created"),
        (32, "h-new", "acct-hooks", "account", "user_login"),
    ]
    changed_at = {"acct-all": 20, "acct-excl": 21, "acct-hooks": 22}
    expected = faults.expected_across_change(events, raw, new, changed_at)
    assert expected["all-local"] == {"r-old", "change-all"}
    assert expected["excl-local"] == {"x-old", "change-excl", "x-new"}
    assert expected["excl-new"] == {"change-excl", "x-new"}
    assert expected["hooks-local"] == {"h-old"}
    assert expected[faults.HOOK_A] == {"h-old", "change-hooks", "h-new"}


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
