"""Our single-object encoding against the reference implementations of Avro.

The Avro Java library (``deploy/local/avro-java/AvroInterop.java``, built by
``deploy/local/avro-java.sh``) decodes with ``BinaryMessageDecoder`` what our codec writes and
encodes with ``BinaryMessageEncoder`` what our codec then reads, for every published schema
version as writer and as reader. The Apache Avro Python library checks the fingerprints a third
way. docs/adr/008-avro-fingerprint-bytes.md says why this matters.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from auditstream.schemas import codec
from tests.factories import make_event

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "deploy" / "local" / "avro-java.sh"
SCHEMA_DIR = REPO_ROOT / "schemas" / "avro"
VERSIONS = [v.version for v in codec.published_versions()]
TIMESTAMPS = ("occurred_at", "recorded_at")


def _schema_file(number: int) -> Path:
    return SCHEMA_DIR / f"{codec.SCHEMA_NAME}.v{number}.avsc"


def _field_defaults(number: int) -> dict[str, Any]:
    """Top-level field name -> default (``...`` where there is none) of version ``number``."""
    raw = json.loads(_schema_file(number).read_text(encoding="utf-8"))
    return {f["name"]: f.get("default", ...) for f in raw["fields"]}


def _events() -> list[dict[str, Any]]:
    """Events that exercise every kind of field: nullable unions null and set, enums, arrays,
    maps, non-ASCII text, and timestamps with microseconds, before the epoch and late."""
    base = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    return [
        make_event(occurred_at=base, details={"activity": "switch_team"}),
        make_event(
            category="recipes",
            activity="recipe_started",
            occurred_at=datetime(2026, 2, 28, 23, 59, 59, 1, tzinfo=UTC),
            recorded_at=datetime(2026, 3, 1, 6, 0, 0, 999999, tzinfo=UTC),
            actor={
                "user_id": "u-2",
                "name": "Zoë Ångström ✓",
                "email": None,
                "role": None,
                "auth_method": "sso",
            },
            resource={"type": "recipe", "id": "r-9", "name": "Sync leads", "folder": None},
            outcome={"status": "failure", "reason": "quota exceeded"},
            changes=[
                {"field": "state", "old_value": "stopped", "new_value": "running"},
                {"field": "owner", "old_value": None, "new_value": None},
            ],
            request=None,
            details={"k": "v", "empty": "", "ключ": "значение"},
        ),
        make_event(
            occurred_at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            recorded_at=base + timedelta(days=3),
            actor={
                "user_id": "system",
                "name": None,
                "email": None,
                "role": None,
                "auth_method": "system",
            },
            request={"ip": None, "user_agent": None, "request_id": None, "session_id": None},
        ),
    ]


def _as_written_by(event: dict[str, Any], writer: int) -> dict[str, Any]:
    """``event`` limited to the top-level fields of version ``writer``."""
    return {k: v for k, v in event.items() if k in _field_defaults(writer)}


def _as_read_by(event: dict[str, Any], reader: int) -> dict[str, Any]:
    """What a reader of version ``reader`` sees of ``event``: its fields, defaults filled in."""
    return {name: event.get(name, default) for name, default in _field_defaults(reader).items()}


def _to_json(event: dict[str, Any]) -> str:
    def encode(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, uuid.UUID):
            return str(value)
        raise TypeError(f"no JSON form for {value!r}")

    return json.dumps(event, default=encode, ensure_ascii=False)


def _comparable(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with timestamps as datetimes and the event id as text, from either side."""
    out = dict(event)
    for name in TIMESTAMPS:
        value = out[name]
        out[name] = datetime.fromisoformat(value) if isinstance(value, str) else value
    out["event_id"] = str(out["event_id"])
    return out


@pytest.fixture(scope="module")
def java_classpath() -> str:
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the Avro Java library check needs {', '.join(missing)} on PATH")
    built = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "build"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, f"{BUILD_SCRIPT.name} build failed:\n{built.stderr}"
    return built.stdout.strip().splitlines()[-1]


def _java(classpath: str, args: Sequence[str], lines: Iterable[str] = ()) -> list[str]:
    """Runs AvroInterop with ``args``, one input line per item; returns its output lines."""
    done = subprocess.run(
        ["java", "-cp", classpath, "AvroInterop", *args],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"AvroInterop {args[0]} failed:\n{done.stderr}"
    return done.stdout.splitlines()


def _java_decode(classpath: str, reader: int, messages: Sequence[bytes]) -> list[dict[str, Any]]:
    writers = [str(_schema_file(n)) for n in VERSIONS]
    args = ["decode", str(_schema_file(reader)), *writers]
    return [json.loads(line) for line in _java(classpath, args, [m.hex() for m in messages])]


def test_java_computes_our_fingerprints_and_canonical_forms(java_classpath: str) -> None:
    files = [str(_schema_file(n)) for n in VERSIONS]
    lines = [json.loads(line) for line in _java(java_classpath, ["fingerprint", *files])]
    assert len(lines) == len(VERSIONS)
    for number, line in zip(VERSIONS, lines, strict=True):
        ours = codec.version(number)
        assert line["fingerprint"] == f"{ours.fingerprint:016x}"
        assert line["canonical_form"] == to_parsing_canonical_form(ours.parsed)


@pytest.mark.parametrize("reader", VERSIONS)
@pytest.mark.parametrize("writer", VERSIONS)
def test_java_decodes_what_we_write(java_classpath: str, writer: int, reader: int) -> None:
    events = [_as_written_by(e, writer) for e in _events()]
    messages = [codec.encode(e, codec.version(writer)) for e in events]
    decoded = _java_decode(java_classpath, reader, messages)
    assert len(decoded) == len(events)
    for event, line in zip(events, decoded, strict=True):
        assert "error" not in line, line
        assert _comparable(line["event"]) == _comparable(_as_read_by(event, reader))


@pytest.mark.parametrize("writer", VERSIONS)
def test_we_decode_what_java_writes(java_classpath: str, writer: int) -> None:
    events = [_as_written_by(e, writer) for e in _events()]
    lines = _java(java_classpath, ["encode", str(_schema_file(writer))], map(_to_json, events))
    messages = [bytes.fromhex(line) for line in lines]
    assert len(messages) == len(events)
    for event, message in zip(events, messages, strict=True):
        # Avro binary encoding is deterministic: the same event gives the same bytes.
        assert message == codec.encode(event, codec.version(writer))
        assert codec.writer_of(message) is codec.version(writer)
        for reader in VERSIONS:
            decoded = codec.decode(message, codec.version(reader))
            assert _comparable(decoded) == _comparable(_as_read_by(event, reader))


def test_java_rejects_the_reversed_fingerprints_of_earlier_releases(java_classpath: str) -> None:
    spec = codec.encode(make_event())
    reversed_header = spec[:2] + spec[2:10][::-1] + spec[10:]
    lines = _java_decode(java_classpath, VERSIONS[-1], [reversed_header, spec])
    assert lines[0]["error"] == "MissingSchemaException"
    assert "event" in lines[1]
    # We still read both.
    assert codec.decode(reversed_header) == codec.decode(spec)


def _simple_primitives(node: object) -> object:
    """``node`` with ``{"type": "long"}``-style primitive objects written as ``"long"``."""
    if isinstance(node, dict):
        if set(node) == {"type"} and isinstance(node["type"], str):
            return node["type"]
        return {k: _simple_primitives(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_simple_primitives(item) for item in node]
    return node


@pytest.mark.parametrize("number", VERSIONS)
def test_python_avro_library_agrees_on_the_fingerprint_of_the_canonical_form(
    number: int,
) -> None:
    ours = codec.version(number)
    canonical = to_parsing_canonical_form(ours.parsed)
    # Parsed from the canonical form (no logical types left), the library writes it unchanged
    # and its CRC-64-AVRO gives the header bytes, in the order of the specification.
    from_canonical = avro.schema.parse(canonical)
    assert from_canonical.canonical_form == canonical
    assert from_canonical.fingerprint("CRC-64-AVRO") == ours.fingerprint_bytes


@pytest.mark.parametrize("number", VERSIONS)
def test_python_avro_library_canonical_form_differs_only_by_logical_type_primitives(
    number: int,
) -> None:
    # From the .avsc, the library (1.12) writes a primitive that carried a logical type as
    # {"type":"long"} instead of "long", so its fingerprint of our schema file is not the
    # writer fingerprint (docs/adr/008-avro-fingerprint-bytes.md). Otherwise the forms agree.
    text = _schema_file(number).read_text(encoding="utf-8")
    theirs = json.loads(avro.schema.parse(text).canonical_form)
    ours = to_parsing_canonical_form(parse_schema(json.loads(text)))
    assert json.dumps(_simple_primitives(theirs), separators=(",", ":")) == ours
