"""The activity catalog must match the product's activity reference exactly."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditstream.schemas.catalog import (
    ACTIVITIES,
    CATEGORIES,
    Activity,
    activities_in,
    activity,
    as_json_records,
    category,
    is_known,
)

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "activity-audit-log.txt"
EXAMPLE_SUFFIX = " See an example."
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
HEADING = re.compile(r"^# (?P<title>.+) Activities$")


@dataclass(frozen=True)
class Section:
    """One "# X Activities" section of the reference."""

    title: str
    description: str
    rows: tuple[str, ...]


def parse_reference(text: str) -> list[Section]:
    """Return the category sections of the "Activity Reference" part."""
    lines = text.splitlines()
    assert "# Activity Reference" in lines, "reference has no Activity Reference"
    lines = lines[lines.index("# Activity Reference") + 1 :]
    sections: list[Section] = []
    i = 0
    while i < len(lines):
        match = HEADING.match(lines[i])
        i += 1
        if match is None:
            continue
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("# "):
            if lines[i].strip():
                body.append(lines[i].strip())
            i += 1
        assert len(body) >= 2, f"section {match['title']!r} is empty"
        assert body[1] == "Activity Description", (
            f"section {match['title']!r} has no Activity Description table"
        )
        sections.append(Section(match["title"], body[0], tuple(body[2:])))
    return sections


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    if not REFERENCE.is_file():
        pytest.skip(f"activity reference not found at {REFERENCE}")
    return parse_reference(REFERENCE.read_text(encoding="utf-8"))


def section_category_key(section: Section) -> str:
    """Map a reference heading ("Pub/Sub Topic") to its catalog category key."""
    matches = [c.key for c in CATEGORIES if c.name.casefold() == section.title.casefold()]
    assert len(matches) == 1, f"no catalog category for heading {section.title!r}"
    return matches[0]


def match_row(row: str, candidates: tuple[Activity, ...]) -> Activity | None:
    """Return the catalog activity a reference row describes, if any.

    A row is "<name> <description>[ See an example.]". The longest catalog
    name that prefixes the row wins, so "User login failed ..." is not taken
    for "User login".
    """
    prefixed = [a for a in candidates if row.startswith(a.name + " ")]
    if not prefixed:
        return None
    best = max(prefixed, key=lambda a: len(a.name))
    rest = row[len(best.name) + 1 :].removesuffix(EXAMPLE_SUFFIX)
    return best if rest == best.description else None


def test_reference_categories_match_catalog(sections: list[Section]) -> None:
    assert [section_category_key(s) for s in sections] == [c.key for c in CATEGORIES]
    for section in sections:
        assert category(section_category_key(section)).description == (section.description)


def test_every_reference_row_is_in_catalog(sections: list[Section]) -> None:
    for section in sections:
        key = section_category_key(section)
        in_category = activities_in(key)
        for row in section.rows:
            found = match_row(row, in_category)
            assert found is not None, f"{key}: reference row not in catalog: {row!r}"
            assert found.category == key


def test_catalog_has_nothing_extra(sections: list[Section]) -> None:
    matched: list[str] = []
    for section in sections:
        in_category = activities_in(section_category_key(section))
        for row in section.rows:
            found = match_row(row, in_category)
            if found is not None:
                matched.append(found.key)
    assert matched == [a.key for a in ACTIVITIES], "catalog order or content differs"
    assert len(ACTIVITIES) == sum(len(s.rows) for s in sections)


def test_descriptions_do_not_keep_example_links() -> None:
    for a in ACTIVITIES:
        assert not a.description.endswith(EXAMPLE_SUFFIX.strip()), a.key


def test_keys_are_unique_and_snake_case() -> None:
    activity_keys = [a.key for a in ACTIVITIES]
    category_keys = [c.key for c in CATEGORIES]
    assert len(set(activity_keys)) == len(activity_keys)
    assert len(set(category_keys)) == len(category_keys)
    for key in activity_keys + category_keys:
        assert SNAKE_CASE.match(key), key


def test_every_activity_has_a_known_category() -> None:
    category_keys = {c.key for c in CATEGORIES}
    for a in ACTIVITIES:
        assert a.category in category_keys, a.key
    assert sum(len(activities_in(c.key)) for c in CATEGORIES) == len(ACTIVITIES)


@pytest.mark.parametrize(
    ("category_key", "activity_key", "expected"),
    [
        ("account", "user_login", True),
        ("account", "user_login_failed", True),
        ("recipe", "recipe_cloned", True),
        ("connection", "connection_created", True),
        ("api_policy", "api_policy_updated", True),
        ("account", "audit_log_streaming_destination_updated", True),
        ("recipe", "user_login", False),
        ("connection", "folder_created", False),
        ("account", "no_such_activity", False),
        ("no_such_category", "user_login", False),
        ("", "", False),
    ],
)
def test_is_known(category_key: str, activity_key: str, expected: bool) -> None:
    assert is_known(category_key, activity_key) is expected


def test_lookups() -> None:
    assert activity("user_switched_team").name == "User switched team"
    assert activity("recipe_cloned").name == "Cloned/Copy"
    assert category("pubsub_topic").name == "Pub/Sub topic"
    assert [a.key for a in activities_in("folder")] == [
        "folder_created",
        "folder_deleted",
        "folder_renamed",
        "folder_moved",
    ]


@pytest.mark.parametrize("lookup", [category, activity, activities_in])
def test_unknown_keys_raise_key_error(lookup: Callable[[str], object]) -> None:
    with pytest.raises(KeyError, match="no_such_key"):
        lookup("no_such_key")


def test_as_json_records_shape() -> None:
    records = as_json_records()
    assert len(records) == len(ACTIVITIES)
    for record, a in zip(records, ACTIVITIES, strict=True):
        assert set(record) == {"category", "category_key", "name", "key", "description"}
        assert all(isinstance(v, str) for v in record.values())
        assert record["category"] == category(a.category).name
        assert record["category_key"] == a.category
        assert (record["name"], record["key"], record["description"]) == (
            a.name,
            a.key,
            a.description,
        )
