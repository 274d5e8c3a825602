"""The dead-letter queue's pure parts: positions, escaping, selection, listing rows, replay
records and plans, the replay's audit record; and the command's option parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditstream.api.dlq_command import load_fix, parse_since, table
from auditstream.config.errors import ConfigError
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letter_queue import (
    REPLAYED_COUNT,
    REPLAYED_FROM,
    REPLAYS_TOPIC,
    DeadLetter,
    Fix,
    Position,
    ReplayRefused,
    Selection,
    details,
    escape_bytes,
    header_text,
    hex_dump,
    listing_row,
    parse_position,
    plan_replay,
    replay_audit_record,
    replay_record,
    safe_text,
)
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.log import Headers, Record
from auditstream.producers.sdk import to_record
from auditstream.schemas import codec
from tests.factories import make_event

HEADERS: Headers = (("category", b"account"), ("activity", b"user_login"))
T0 = 1_790_000_000_000


def _dl(
    value: bytes = b"garbage",
    *,
    key: bytes | None = b"acme",
    headers: Headers = HEADERS,
    stage: str = "router",
    reason: str = "malformed",
    offset: int = 5,
    partition: int = 0,
    source_topic: str = topics.ACTIVITY,
    ts: int = T0,
) -> DeadLetter:
    # Built here, not by dead_letter(): a 5 MB value is kept whole to test the listing.
    dlq_headers: Headers = (
        ("dlq.reason", reason.encode()),
        ("dlq.detail", b"why it failed"),
        ("dlq.stage", stage.encode()),
        ("dlq.source.topic", source_topic.encode()),
        ("dlq.source.partition", b"0"),
        ("dlq.source.offset", str(40 + offset).encode()),
    )
    return DeadLetter(
        Record(topics.DEAD_LETTERS, partition, offset, key, value, (*headers, *dlq_headers), ts)
    )


def _replayed(dl: DeadLetter, offset: int, reason: str = "malformed") -> DeadLetter:
    """``dl`` replayed and dead-lettered again at ``offset``."""
    sent = replay_record(dl)
    again = Record(topics.ACTIVITY, 0, 99, sent.key, sent.value, sent.headers)
    out = dead_letter(again, stage="router", reason=reason, detail="again")
    return DeadLetter(Record(out.topic, 0, offset, out.key, out.value, out.headers, T0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", Position(0, 7)),
        ("0:7", Position(0, 7)),
        ("3:12", Position(3, 12)),
        (" 2:0 ", Position(2, 0)),
    ],
)
def test_positions(text: str, expected: Position) -> None:
    assert parse_position(text) == expected
    assert parse_position(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "x", "1:x", "1:2:3", "-1", "0:-4", "1.5"])
def test_bogus_positions_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"DLQ position|never negative"):
        parse_position(text)


@pytest.mark.parametrize(
    ("data", "limit", "expected"),
    [
        (b"plain text", None, "plain text"),
        (b"\x1b[31mred\x1b[0m", None, "\\x1b[31mred\\x1b[0m"),
        (b"a\nb\r\tc\\", None, "a\\nb\\r\\tc\\\\"),
        (b"\x00\xff\x7f\x9b", None, "\\x00\\xff\\x7f\\x9b"),
        (b"abcdef", 3, "abc..."),
        (b"abc", 3, "abc"),
        (b"", 32, ""),
        ("é".encode(), None, "\\xc3\\xa9"),
    ],
)
def test_escape_bytes(data: bytes, limit: int | None, expected: str) -> None:
    assert escape_bytes(data, limit) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme", "acme"),
        ("café ünï", "café ünï"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
        ("\x9b31m", "\\x9b31m"),  # C1 control sequence introducer
        ("line\nbreak", "line\\x0abreak"),
        ("back\\slash", "back\\\\slash"),
        ("\U000e0001tag", "\\U000e0001tag"),
    ],
)
def test_safe_text(text: str, expected: str) -> None:
    assert safe_text(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (b"malformed", "malformed"),
        (b"\xff\xfe", "\\xff\\xfe"),
        ("naïve\x1b[2J".encode(), "naïve\\x1b[2J"),
    ],
)
def test_header_text(value: bytes | None, expected: str | None) -> None:
    assert header_text(value) == expected


def test_nothing_printed_holds_a_control_character() -> None:
    nasty = bytes(range(256)) * 3 + "\u202e\u2028\x85".encode()
    for text in (
        escape_bytes(nasty),
        safe_text(nasty.decode("latin-1")),
        "\n".join(hex_dump(nasty, 1000)),
    ):
        assert all(ch == "\n" or ch.isprintable() for ch in text), text


def test_hex_dump() -> None:
    assert hex_dump(b"\xc3\x01ABC", 256) == ["00000000  c3 01 41 42 43" + " " * 33 + "  |..ABC|"]
    lines = hex_dump(bytes(40), 32)
    assert len(lines) == 3
    assert lines[-1] == "... 8 more bytes"
    assert hex_dump(b"", 16) == []


@pytest.mark.parametrize(
    ("selection", "matches"),
    [
        (Selection(), True),
        (Selection(positions=frozenset({Position(0, 5)})), True),
        (Selection(positions=frozenset({Position(1, 5)})), False),
        (Selection(reasons=frozenset({"malformed", "x"})), True),
        (Selection(reasons=frozenset({"unknown_schema"})), False),
        (Selection(accounts=frozenset({"acme"})), True),
        (Selection(accounts=frozenset({"globex"})), False),
        (Selection(stages=frozenset({"sink"})), False),
        (Selection(since_ms=T0), True),
        (Selection(since_ms=T0 + 1), False),
        (Selection(until_ms=T0), False),
        (Selection(min_offset=5, max_offset=5), True),
        (Selection(min_offset=6), False),
        (Selection(max_offset=4), False),
        (Selection(reasons=frozenset({"malformed"}), accounts=frozenset({"globex"})), False),
    ],
)
def test_selection(selection: Selection, matches: bool) -> None:
    assert selection.matches(_dl()) is matches


def test_only_an_empty_selection_is_not_narrowed() -> None:
    assert not Selection().narrowed
    assert Selection(stages=frozenset({"router"})).narrowed


@pytest.mark.parametrize(
    ("dl", "account", "first_bytes"),
    [
        (_dl(), "acme", "garbage"),
        (_dl(key=None), None, "garbage"),
        (_dl(key=b"\x1b[2Jx"), "\\x1b[2Jx", "garbage"),
        (_dl(b"\x1b[31m" + b"A" * 64), "acme", "\\x1b[31m" + "A" * 27 + "..."),
        (_dl(b"x" * 5_000_000), "acme", "x" * 32 + "..."),
    ],
)
def test_listing_rows(dl: DeadLetter, account: str | None, first_bytes: str) -> None:
    row = listing_row(dl)
    assert row["dlq"] == "0:5"
    assert row["time"] == "2026-09-21T14:13:20Z"
    assert (row["stage"], row["reason"], row["account"]) == ("router", "malformed", account)
    assert row["source"] == f"{topics.ACTIVITY}@0:45"
    assert row["size"] == len(dl.record.value)
    assert row["first_bytes"] == first_bytes
    assert row["replays"] == 0


def test_a_record_without_dlq_headers_still_lists() -> None:
    row = listing_row(DeadLetter(Record(topics.DEAD_LETTERS, 0, 1, None, b"", ())))
    assert (row["stage"], row["reason"], row["source"]) == ("unknown", "unknown", "?@?:?")


def test_details_decode_an_event_or_say_why_not() -> None:
    event = make_event(account_id="acme")
    good = details(_dl(codec.encode(event), headers=(), reason="missing_header"))
    assert good["event"]["event_id"] == event["event_id"]
    assert good["event"]["occurred_at"] == "2026-11-27T10:00:00.123456+00:00"
    assert good["decode_error"] is None
    json.dumps(good)  # all of it is JSON
    bad = details(_dl(b"\x1b[2J garbage", headers=(("x\x1b", b"\x07\xff"),)))
    assert bad["event"] is None
    assert "bad marker" in bad["decode_error"]
    assert ["x\\x1b", "\\x07\\xff"] in bad["headers"]
    assert ["dlq.reason", "malformed"] in bad["headers"]
    assert bad["hex"][0].startswith("00000000  1b 5b 32 4a")


def test_a_replay_record_goes_to_the_activity_topic_without_dlq_headers() -> None:
    dl = _dl(headers=(*HEADERS, ("trace", b"t-1")), offset=7)
    sent = replay_record(dl)
    assert sent.topic == topics.ACTIVITY
    assert (sent.key, sent.value) == (b"acme", b"garbage")
    assert sent.headers == (
        *HEADERS,
        ("trace", b"t-1"),
        (REPLAYED_FROM, b"0:7"),
        (REPLAYED_COUNT, b"1"),
    )


def test_a_replayed_record_that_fails_again_counts_its_replays() -> None:
    first = _dl(offset=3)
    second = _replayed(first, 10)
    assert (second.replayed_from, second.replay_count) == ("0:3", 1)
    third = _replayed(second, 20)
    assert (third.replayed_from, third.replay_count) == ("0:10", 2)
    sent = replay_record(third)
    names = [k for k, _v in sent.headers]
    assert names.count(REPLAYED_FROM) == 1
    assert names.count(REPLAYED_COUNT) == 1
    assert sent.headers[-2:] == ((REPLAYED_FROM, b"0:20"), (REPLAYED_COUNT, b"3"))
    fourth = _replayed(third, 30)
    with pytest.raises(ReplayRefused, match="replayed 3 times"):
        replay_record(fourth)
    assert replay_record(fourth, force=True).headers[-1] == (REPLAYED_COUNT, b"4")
    with pytest.raises(ReplayRefused):
        replay_record(second, max_replays=1)


@pytest.mark.parametrize(("count", "refused"), [(b"2", False), (b"x", True), (b"-5", False)])
def test_a_replay_count_that_is_not_a_number_counts_as_too_many(
    count: bytes, refused: bool
) -> None:
    dl = _dl(headers=(*HEADERS, (REPLAYED_COUNT, count)))
    if refused:
        with pytest.raises(ReplayRefused):
            replay_record(dl)
    else:
        replay_record(dl)


def test_a_fix_replaces_value_key_and_catalog_headers() -> None:
    fixed = to_record(make_event(account_id="globex", activity="user_logout"))
    fix = Fix(fixed.value, fixed.key or b"", fixed.headers)
    dl = _dl(key=None, headers=(("category", b"\xff"), ("trace", b"t")), reason="missing_key")
    sent = replay_record(dl, fix)
    assert (sent.key, sent.value) == (b"globex", fixed.value)
    assert sent.headers == (
        ("category", b"account"),
        ("activity", b"user_logout"),
        ("trace", b"t"),
        (REPLAYED_FROM, b"0:5"),
        (REPLAYED_COUNT, b"1"),
    )


def test_a_plan_replays_one_copy_of_an_event_several_sinks_dead_lettered() -> None:
    body = b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff\xff"
    copies = [
        _dl(body, stage="sink", offset=o, source_topic=topics.destination_topic(d))
        for o, d in ((4, "a"), (6, "b"))
    ]
    other = _dl(b"other", stage="sink", offset=8)
    router = _dl(body, offset=2)  # the router dead-lettered the same bytes: its own event
    spent = _replayed(_replayed(_replayed(_dl(offset=1), 3), 5), 9)
    plan = plan_replay([other, *copies, router, spent])
    assert [str(dl.position) for dl, _r in plan.sends] == ["0:2", "0:4", "0:8"]
    refused = {str(dl.position): why for dl, why in plan.refused}
    assert "the same event as 0:4" in refused["0:6"]
    assert "replayed 3 times" in refused["0:9"]
    forced = plan_replay([spent], force=True)
    assert len(forced.sends) == 1
    assert not forced.refused


def test_a_fixed_sink_copy_is_replayed_even_if_another_copy_is() -> None:
    copies = [_dl(b"same", stage="sink", offset=o) for o in (4, 6)]
    fixed = to_record(make_event())
    plan = plan_replay(copies, {Position(0, 6): Fix(fixed.value, b"acme", fixed.headers)})
    assert [str(dl.position) for dl, _r in plan.sends] == ["0:4", "0:6"]
    assert plan.fixed == {Position(0, 6)}


def test_the_audit_record_says_who_replayed_what_when() -> None:
    plan = plan_replay([_dl(offset=1), _dl(offset=2, key=None, reason="missing_key")])
    plan.refused.append((_dl(offset=3), "no"))
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    rec = replay_audit_record(plan, actor="ops-ada", now=now, replay_id="r-1")
    assert (rec.topic, rec.key) == (REPLAYS_TOPIC, b"r-1")
    doc: dict[str, Any] = json.loads(rec.value)
    assert doc["actor"] == "ops-ada"
    assert doc["at"] == "2026-11-29T06:00:00+00:00"
    assert doc["target_topic"] == topics.ACTIVITY
    assert [(r["dlq"], r["account"], r["fixed"]) for r in doc["records"]] == [
        ("0:1", "acme", False),
        ("0:2", None, False),
    ]
    assert doc["refused"] == [{"dlq": "0:3", "why": "no"}]
    with pytest.raises(ValueError, match="timezone"):
        replay_audit_record(plan, actor="a", now=datetime(2026, 1, 1), replay_id="r")


NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("90s", NOW_MS - 90_000),
        ("30m", NOW_MS - 1_800_000),
        ("2h", NOW_MS - 7_200_000),
        ("1.5d", NOW_MS - 129_600_000),
        ("2026-11-29T05:00:00Z", NOW_MS - 3_600_000),
        ("2026-11-29T05:00:00", NOW_MS - 3_600_000),
        ("2026-11-29T07:00:00+02:00", NOW_MS - 3_600_000),
    ],
)
def test_since(text: str, expected_ms: int) -> None:
    assert parse_since(text, NOW) == expected_ms


@pytest.mark.parametrize("text", ["yesterday", "5w", "", "-3h"])
def test_bad_since_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--since"):
        parse_since(text, NOW)


def test_the_table_aligns_and_cuts_long_cells() -> None:
    rows = [listing_row(_dl(reason="r" * 60)), listing_row(_dl(key=None, offset=12))]
    lines = table(rows).splitlines()
    assert lines[0].split() == [
        "DLQ",
        "TIME",
        "STAGE",
        "REASON",
        "ACCOUNT",
        "SOURCE",
        "SIZE",
        "FIRST",
        "BYTES",
    ]
    assert "r" * 21 + "..." in lines[1]
    assert "r" * 22 not in lines[1]
    assert lines[2].split()[4] == "-"
    assert lines[1].index("garbage") == lines[2].index("garbage")


def test_a_fix_file_holds_json_or_encoded_bytes(tmp_path: Path) -> None:
    event = make_event(account_id="globex")
    encoded = tmp_path / "event.avro"
    encoded.write_bytes(codec.encode(event))
    as_json = tmp_path / "event.json"
    shown = details(_dl(codec.encode(event)))
    as_json.write_text(json.dumps({"event": shown["event"]}))
    for path in (encoded, as_json):
        fix = load_fix(path)
        assert fix.key == b"globex"
        assert dict(fix.headers) == {"category": b"account", "activity": b"user_login"}
        assert codec.decode(fix.value)["event_id"] == codec.decode(codec.encode(event))["event_id"]
    assert load_fix(encoded).value == encoded.read_bytes()


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"account_id": "a"}', b"\xc3\x01garbage", b'{"event": 3}'],
)
def test_a_fix_file_that_is_no_valid_event_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fix"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not a valid audit event"):
        load_fix(path)


def test_a_missing_fix_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--value-file"):
        load_fix(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("cut_headers", "cut"),
    [
        ((("dlq.value.size", b"5000000"),), ("value",)),
        ((("dlq.key.size", b"4096"),), ("key",)),
        ((("dlq.headers.dropped", b"40"),), ("headers",)),
        ((("dlq.value.size", b"9"), ("dlq.headers.dropped", b"1")), ("value", "headers")),
    ],
)
def test_a_dead_letter_holding_part_of_its_original_is_replayed_only_fixed(
    cut_headers: Headers, cut: tuple[str, ...]
) -> None:
    base = _dl(b"x" * 100)
    dl = DeadLetter(
        Record(topics.DEAD_LETTERS, 0, 5, b"acme", b"x" * 100, (*base.record.headers, *cut_headers))
    )
    assert dl.cut == cut
    row = listing_row(dl)
    assert row["cut"] == list(cut)
    if "value" in cut:
        assert row["size"] == int(dict(cut_headers)["dlq.value.size"])
        assert "(cut)" in table([row])
    with pytest.raises(ReplayRefused, match="only part of the original"):
        replay_record(dl, force=True)
    assert plan_replay([dl]).refused
    fixed = to_record(make_event())
    sent = replay_record(dl, Fix(fixed.value, b"acme", fixed.headers))
    assert sent.value == fixed.value
    assert not any(k.startswith("dlq.") for k, _v in sent.headers)


def test_an_actor_that_is_no_valid_text_is_recorded_replaced() -> None:
    plan = plan_replay([_dl()])
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    rec = replay_audit_record(plan, actor="ops\udcff", now=now, replay_id="r")
    assert rec.headers == (("actor", b"ops?"),)
    assert json.loads(rec.value)["actor"] == "ops\udcff"


def test_a_fix_file_is_read_only_up_to_10_mb(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    with path.open("wb") as f:
        f.truncate(10 * 1024 * 1024 + 1)
    with pytest.raises(ConfigError, match="over 10485760 bytes"):
        load_fix(path)
    with pytest.raises(ConfigError, match="--value-file"):
        load_fix(tmp_path)  # a folder


@pytest.mark.parametrize(
    ("stage", "value", "force", "refused"),
    [
        ("sink", codec.encode(make_event()), False, True),  # e.g. render_failed: one destination
        ("sink", codec.encode(make_event()), True, False),
        ("sink", b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff", False, False),
        ("router", codec.encode(make_event()), False, False),  # e.g. missing_header
    ],
)
def test_a_sink_stage_dead_letter_whose_event_decodes_is_replayed_only_forced(
    stage: str, value: bytes, force: bool, refused: bool
) -> None:
    dl = _dl(value, stage=stage, reason="render_failed", source_topic="auditstream.dest.siem")
    plan = plan_replay([dl], force=force)
    assert bool(plan.refused) is refused
    if refused:
        assert "auditstream.dest.siem only (render_failed)" in plan.refused[0][1]
        assert "destinations replay" in plan.refused[0][1]
