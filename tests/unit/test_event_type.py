"""``schemas.event.ActivityEvent`` matches the current Avro schema, field by field."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any, Literal, get_type_hints
from uuid import UUID

import pytest

from auditstream.schemas import codec, event

Json = Any

_PRIMITIVES: dict[str, object] = {"string": str, "long": int, "int": int, "boolean": bool}
_LOGICAL: dict[tuple[str, str], object] = {
    # What the codec takes and returns for each logical type the schema uses.
    ("string", "uuid"): str | UUID,
    ("long", "timestamp-micros"): datetime,
}


def current_schema() -> Json:
    name = f"{codec.SCHEMA_NAME}.v{codec.current().version}.avsc"
    path = resources.files("auditstream.schemas").joinpath("avro", name)
    return json.loads(path.read_text(encoding="utf-8"))


def records(schema: Json) -> dict[str, Json]:
    """Every record schema nested in ``schema``, by name."""
    found: dict[str, Json] = {}

    def walk(node: Json) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch)
        elif isinstance(node, dict):
            if node.get("type") == "record":
                found[node["name"]] = node
                for field in node["fields"]:
                    walk(field["type"])
            walk(node.get("items"))
            walk(node.get("values"))

    walk(schema)
    return found


def expected_type(avro: Json) -> Any:
    """The Python annotation a ``TypedDict`` key must carry for the Avro type ``avro``."""
    if isinstance(avro, str):
        return _PRIMITIVES[avro]
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        assert len(branches) == 1, f"unions other than [null, X] are not mapped: {avro}"
        return expected_type(branches[0]) | None if "null" in avro else expected_type(branches[0])
    kind = avro["type"]
    if "logicalType" in avro:
        return _LOGICAL[(kind, avro["logicalType"])]
    if kind == "record":
        return getattr(event, avro["name"])
    if kind == "enum":
        return Literal[tuple(avro["symbols"])]
    if kind == "array":
        return list[expected_type(avro["items"])]  # type: ignore[misc]
    if kind == "map":
        return dict[str, expected_type(avro["values"])]  # type: ignore[misc]
    return expected_type(kind)


RECORDS = records(current_schema())


def test_the_current_schema_has_the_records_the_module_describes() -> None:
    assert set(RECORDS) == {"ActivityEvent", "Actor", "Resource", "Outcome", "Change", "Request"}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_typed_dict_keys_are_the_record_fields(name: str) -> None:
    typed = getattr(event, name, None)
    assert typed is not None, f"schemas.event has no TypedDict for the Avro record {name}"
    fields = [f["name"] for f in RECORDS[name]["fields"]]
    assert list(get_type_hints(typed)) == fields
    # The decoder returns every field, so every key is required (see the module doc).
    assert typed.__required_keys__ == frozenset(fields)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_typed_dict_value_types_and_nullability_follow_the_schema(name: str) -> None:
    hints = get_type_hints(getattr(event, name))
    for field in RECORDS[name]["fields"]:
        expected = expected_type(field["type"])
        assert hints[field["name"]] == expected, f"{name}.{field['name']}"


@pytest.mark.parametrize(
    ("avro", "python"),
    [
        ("string", str),
        (["null", "string"], str | None),
        ({"type": "long", "logicalType": "timestamp-micros"}, datetime),
        ({"type": "string", "logicalType": "uuid"}, str | UUID),
        ({"type": "enum", "name": "E", "symbols": ["a", "b"]}, Literal["a", "b"]),
        ({"type": "array", "items": "string"}, list[str]),
        ({"type": "map", "values": "string"}, dict[str, str]),
        (["null", {"type": "record", "name": "Actor", "fields": []}], event.Actor | None),
    ],
)
def test_expected_type_mapping(avro: Json, python: object) -> None:
    assert expected_type(avro) == python


def test_a_decoded_event_has_the_declared_runtime_types() -> None:
    built: event.ActivityEvent = {
        "event_id": "0b6f3c1e-5a8d-4a55-9d2e-6f1a2b3c4d5e",
        "occurred_at": datetime.fromisoformat("2026-11-27T10:00:00+00:00"),
        "recorded_at": datetime.fromisoformat("2026-11-27T10:00:01+00:00"),
        "account_id": "acme",
        "category": "account",
        "activity": "user_login",
        "actor": {
            "user_id": "u-1",
            "name": None,
            "email": None,
            "role": None,
            "auth_method": "password",
        },
        "resource": None,
        "outcome": {"status": "success", "reason": None},
        "changes": [{"field": "name", "old_value": None, "new_value": "x"}],
        "request": None,
        "details": {},
    }
    decoded = codec.decode(codec.encode(built))
    assert list(decoded) == list(built)
    assert isinstance(decoded["event_id"], UUID)
    assert str(decoded["event_id"]) == built["event_id"]
    assert decoded["occurred_at"] == built["occurred_at"]
    assert decoded["occurred_at"].utcoffset() is not None
