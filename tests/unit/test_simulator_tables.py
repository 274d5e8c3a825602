"""The simulator's per-activity and per-resource tables cover the activity catalog exactly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from auditstream.producers.simulator import activities, naming, resources
from auditstream.producers.simulator.clock import Clock
from auditstream.producers.simulator.handlers import SPECIFIC, handler_for, lifecycle
from auditstream.schemas import catalog

CATALOG_KEYS = [a.key for a in catalog.ACTIVITIES]
GENERIC = [a for a in catalog.ACTIVITIES if a.key not in SPECIFIC and a.category != "account"]


def test_every_catalog_activity_has_a_profile() -> None:
    missing = [k for k in CATALOG_KEYS if k not in activities.PROFILES]
    assert not missing, f"add these activities to simulator.activities.PROFILES: {missing}"


def test_every_profile_names_a_catalog_activity() -> None:
    unknown = sorted(set(activities.PROFILES) - set(CATALOG_KEYS))
    assert not unknown, f"PROFILES names activities the catalog lacks: {unknown}"


def test_profiles_are_plausible() -> None:
    for key, p in activities.PROFILES.items():
        assert p.weight > 0, key
        assert 0.0 <= p.api_key_share < 1.0, key
        assert 0.0 <= p.system_share < 1.0, key
        assert not (p.sessionless and p.ends_session), key


def test_specs_follow_the_catalog_and_fall_back_to_the_default_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = activities.specs()
    assert [(s.category, s.key) for s in specs] == [(a.category, a.key) for a in catalog.ACTIVITIES]
    trimmed = {k: p for k, p in activities.PROFILES.items() if k != "user_logout"}
    monkeypatch.setattr(activities, "PROFILES", trimmed)
    (logout,) = [s for s in activities.specs() if s.key == "user_logout"]
    assert logout.profile == activities.DEFAULT_PROFILE


def test_specs_reject_a_profile_of_an_unknown_activity(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {**activities.PROFILES, "user_teleported": activities.Profile(1.0)}
    monkeypatch.setattr(activities, "PROFILES", extra)
    with pytest.raises(RuntimeError, match="user_teleported"):
        activities.specs()


def test_activity_weights_are_the_profile_weights() -> None:
    assert {k: p.weight for k, p in activities.PROFILES.items()} == activities.ACTIVITY_WEIGHTS


def test_every_specific_handler_names_a_catalog_activity() -> None:
    unknown = sorted(set(SPECIFIC) - set(CATALOG_KEYS))
    assert not unknown, f"handlers registered for activities the catalog lacks: {unknown}"


def test_every_other_activity_is_a_life_cycle_step() -> None:
    """A catalog activity without its own handler must end in a life-cycle verb; otherwise it
    would silently be simulated as an update."""
    odd = [a.key for a in GENERIC if a.key.rsplit("_", 1)[1] not in lifecycle.VERBS]
    assert not odd, f"give these activities a handler: {odd}"


def test_every_catalog_activity_has_a_handler() -> None:
    for a in catalog.ACTIVITIES:
        assert callable(handler_for(a.category, a.key)), a.key


def test_every_life_cycle_resource_type_has_a_namer() -> None:
    """Resource types without a namer get a numbered generic name: fine as a fallback, not for
    the catalog's own activities."""
    types = {resources.resource_type(a.category, a.key) for a in GENERIC}
    missing = sorted(types - set(naming.NAMERS))
    assert not missing, f"add names for these resource types to simulator.naming: {missing}"


@pytest.mark.parametrize(
    ("category", "key", "expected"),
    [
        ("recipe", "recipe_renamed", "recipe"),
        ("package", "manifest_created", "manifest"),
        ("package", "package_exported", "package"),
        ("team", "invite_created", "invitation"),
        ("team", "member_updated", "user"),
        ("team", "role_deleted", "role"),
        ("connector_sdk", "custom_connector_released", "custom_connector"),
        ("properties", "property_updated", "property"),
        ("api_policy", "api_policy_created", "api_policy"),
    ],
)
def test_resource_type(category: str, key: str, expected: str) -> None:
    assert resources.resource_type(category, key) == expected


@pytest.mark.parametrize("rtype", sorted(naming.NAMERS))
def test_names_are_non_empty_and_reproducible(rtype: str) -> None:
    names = [naming.resource_name(random.Random(5), rtype, "acme.example") for _ in range(2)]
    assert names[0]
    assert names[0] == names[1]


def test_invitations_are_addresses_of_the_account_domain() -> None:
    name = naming.resource_name(random.Random(1), "invitation", "wayne.example")
    assert name.endswith("@wayne.example")
    assert name == name.lower()
    assert " " not in name


def test_unknown_resource_types_get_a_numbered_name() -> None:
    name = naming.resource_name(random.Random(1), "time_machine", "acme.example")
    assert name.startswith("time machine ")
    assert name.rsplit(" ", 1)[1].isdigit()


@pytest.mark.parametrize(
    ("start", "late_fraction", "max_delay"),
    [
        (datetime(2024, 5, 1, tzinfo=UTC), 0.0, timedelta(seconds=1)),
        (datetime(2024, 5, 1), 0.0, timedelta(seconds=1)),  # naive: taken as UTC
        (datetime(2024, 5, 1, tzinfo=UTC), 1.0, timedelta(hours=6, seconds=1)),
    ],
)
def test_clock_timestamps(start: datetime, late_fraction: float, max_delay: timedelta) -> None:
    rng = random.Random(3)
    clock = Clock(start, late_fraction)
    previous = start.replace(tzinfo=UTC)
    for _ in range(200):
        clock.tick(rng)
        occurred, recorded = clock.timestamps(rng)
        assert recorded >= previous
        assert recorded.tzinfo is UTC
        assert timedelta(0) < recorded - occurred <= max_delay
        if late_fraction == 1.0:
            assert recorded - occurred >= timedelta(minutes=2)
        previous = recorded
