"""``auditstream dlq list|show|replay`` on a log the router dead-lettered into: every poison
record listed with its reason, one shown, one fixed and replayed to its destination, one
replayed unfixed and dead-lettered again with ``replayed.from``; and the hostile cases."""

from __future__ import annotations

import json
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from auditstream import cli
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letter_queue import REPLAYED_COUNT, REPLAYED_FROM, REPLAYS_TOPIC
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log, OutgoingRecord, Record
from auditstream.pipeline.produce_all import produce_all
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.producers.sdk import to_record
from auditstream.schemas import codec
from tests.factories import make_event
from tests.readme_blocks import commands, section, sh_blocks

HEADERS = (("category", b"account"), ("activity", b"user_login"))
DEST = "acme-files"


def _backend(log: Log) -> list[str]:
    if isinstance(log, EmbeddedLog):
        return ["--db", str(log.path)]
    assert isinstance(log, KafkaLog)
    return ["--bootstrap", log.bootstrap]


def _run(log: Log, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["dlq", *argv, *_backend(log)])
    out, err = capsys.readouterr()
    return code, out, err


def _read(log: Log, topic: str, expected: int, timeout: float = 30.0) -> list[Record]:
    reader = log.reader(topic)
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found.extend(reader.poll(100, 0.3))
        found.extend(reader.poll(100, 0.3))  # and nothing more
    finally:
        reader.close()
    return found


def _route_all(router: Router, consumed: int, timeout: float = 60.0) -> None:
    """Step ``router`` until it has consumed ``consumed`` activity records. (Not until its lag
    is 0: on Kafka a replay's transaction leaves a commit marker the lag counts.)"""
    deadline = time.monotonic() + timeout
    while router.consumed < consumed:
        if time.monotonic() > deadline:
            raise AssertionError(f"the router consumed {router.consumed} of {consumed} records")
        router.step()


def _settings() -> AccountSettings:
    return AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{"id": DEST, "type": "local", "path": "acme"}]}
    )


POISON: list[tuple[str, OutgoingRecord]] = [
    (
        "malformed",
        OutgoingRecord(
            topics.ACTIVITY, b"not an event \x1b[31mRED\x1b]0;title\x07", b"acme", HEADERS
        ),
    ),
    (
        "unknown_schema",
        OutgoingRecord(
            topics.ACTIVITY, b"\xc3\x01" + struct.pack("<Q", 0xDEADBEEF) + b"body", b"acme", HEADERS
        ),
    ),
    (
        "missing_header",
        OutgoingRecord(topics.ACTIVITY, codec.encode(make_event(account_id="acme")), b"acme", ()),
    ),
    (
        "unknown_activity",
        OutgoingRecord(
            topics.ACTIVITY,
            b"\x00\x01",
            b"acme\x1b[2J",
            (("category", b"\x1b[2Jaccount"), ("activity", "evil\u202etxt".encode())),
        ),
    ),
    ("missing_key", OutgoingRecord(topics.ACTIVITY, b"\xff" * 100, None, HEADERS)),
]


def test_list_show_fix_replay_and_fail_again(
    any_log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = any_log
    publish_settings(log, [_settings()])
    router = Router(log)
    try:
        good = [to_record(make_event(account_id="acme")) for _ in range(3)]
        produce_all(log, [*good[:2], *(r for _reason, r in POISON), good[2]])
        _route_all(router, 8)
        assert len(_read(log, topics.destination_topic(DEST), 3)) == 3

        code, out, err = _run(log, capsys, "list", "--json")
        assert code == 0
        rows: list[dict[str, Any]] = json.loads(out)
        assert [r["reason"] for r in rows] == [reason for reason, _r in POISON]
        by_reason = {r["reason"]: r for r in rows}
        assert by_reason["malformed"]["account"] == "acme"
        assert by_reason["missing_key"]["account"] is None
        assert by_reason["unknown_activity"]["account"] == "acme\\x1b[2J"
        assert by_reason["malformed"]["source"].startswith(f"{topics.ACTIVITY}@0:")
        assert (
            by_reason["malformed"]["first_bytes"] == "not an event \\x1b[31mRED\\x1b]0;title\\x07"
        )
        assert all(r["stage"] == "router" and r["replays"] == 0 for r in rows)
        assert "5 of 5 dead letters shown" in err
        code, out, _err = _run(log, capsys, "list", "--since", "1h", "--json")
        assert len(json.loads(out)) == 5
        code, out, _err = _run(log, capsys, "list", "--since", "2100-01-01T00:00Z", "--json")
        assert json.loads(out) == []

        code, out, _err = _run(log, capsys, "list")
        assert code == 0
        assert "\x1b" not in out
        assert "\u202e" not in out
        assert "\x07" not in out
        assert len(out.splitlines()) == 6  # a heading and one line each
        code, out, _err = _run(log, capsys, "list", "--reason", "malformed", "--json")
        assert [r["reason"] for r in json.loads(out)] == ["malformed"]
        code, out, _err = _run(log, capsys, "list", "--account", "acme", "--limit", "2", "--json")
        assert [r["reason"] for r in json.loads(out)] == ["unknown_schema", "missing_header"]

        malformed = by_reason["malformed"]["dlq"]
        code, out, _err = _run(log, capsys, "show", malformed)
        assert code == 0
        assert "reason:        malformed" in out
        assert "dlq.source.topic: auditstream.activity" in out
        assert "6e 6f 74 20 61 6e" in out  # "not an" in the hex dump
        assert "does not decode as an audit event" in out
        assert "\x1b" not in out
        code, out, _err = _run(log, capsys, "show", by_reason["unknown_activity"]["dlq"])
        assert "category: \\x1b[2Jaccount" in out
        assert "evil\\u202etxt" in out
        assert "\x1b" not in out
        assert "\u202e" not in out
        code, out, _err = _run(log, capsys, "show", by_reason["missing_header"]["dlq"], "--json")
        shown = json.loads(out)
        assert shown["event"]["account_id"] == "acme"
        assert shown["decode_error"] is None

        # The malformed one, fixed: a valid event in JSON, as `show --json` prints one.
        fixed = make_event(account_id="acme", activity="user_logout")
        fix_file = tmp_path / "fixed.json"
        fix_file.write_text(
            json.dumps({"event": {**shown["event"], "event_id": fixed["event_id"]}})
        )
        code, out, err = _run(
            log,
            capsys,
            "replay",
            "--offset",
            malformed,
            "--value-file",
            str(fix_file),
            "--yes",
            "--actor",
            "ops-ada",
        )
        assert code == 0, err
        assert f"send {malformed} (router/malformed) -> {topics.ACTIVITY}" in out
        assert "fixed value" in out
        # The unknown schema one, as it was: it fails again.
        unknown = by_reason["unknown_schema"]["dlq"]
        code, out, err = _run(log, capsys, "replay", "--offset", unknown, "--yes")
        assert code == 0, err

        _route_all(router, 10)
        delivered = _read(log, topics.destination_topic(DEST), 4)
        assert len(delivered) == 4
        replayed = delivered[-1]
        assert str(codec.decode(replayed.value)["event_id"]) == fixed["event_id"]
        assert replayed.header(REPLAYED_FROM) == malformed.encode()
        assert replayed.header(REPLAYED_COUNT) == b"1"

        code, out, _err = _run(log, capsys, "list", "--json")
        rows = json.loads(out)
        assert len(rows) == 6
        again = rows[-1]
        assert again["reason"] == "unknown_schema"
        assert again["replays"] == 1
        code, out, _err = _run(log, capsys, "show", again["dlq"], "--json")
        assert json.loads(out)["replayed_from"] == unknown
        assert [REPLAYED_FROM, unknown] in json.loads(out)["headers"]

        # Replayed once and failed again: with --max-replays 1 it is refused.
        code, _out, err = _run(
            log, capsys, "replay", "--offset", again["dlq"], "--max-replays", "1", "--yes"
        )
        assert code == 1
        assert "replayed 1 times already" in err

        audits = _read(log, REPLAYS_TOPIC, 2)
        assert len(audits) == 2
        docs = [json.loads(a.value) for a in audits]
        assert docs[0]["actor"] == "ops-ada"
        assert [r["dlq"] for r in docs[0]["records"]] == [malformed]
        assert docs[0]["records"][0]["fixed"] is True
        assert [r["dlq"] for r in docs[1]["records"]] == [unknown]
    finally:
        router.close()


@pytest.fixture
def log(tmp_path: Path) -> Any:
    embedded = EmbeddedLog(tmp_path / "log.sqlite")
    ensure_core_topics(embedded)
    yield embedded
    embedded.close()


ONE = dead_letter(Record(topics.ACTIVITY, 0, 0, b"a", b"x"), stage="router", reason="r", detail="d")


def _dead(log: Log, *records: OutgoingRecord) -> None:
    produce_all(log, records)


def test_an_empty_or_missing_dlq_lists_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = EmbeddedLog(tmp_path / "fresh.sqlite")  # no topic at all
    try:
        assert _run(fresh, capsys, "list")[1:] == ("", "0 of 0 dead letters shown\n")
        assert topics.DEAD_LETTERS not in fresh.list_topics()  # listing creates nothing
        ensure_core_topics(fresh)
        code, out, _err = _run(fresh, capsys, "list", "--json")
        assert (code, json.loads(out)) == (0, [])
        code, _out, err = _run(fresh, capsys, "show", "0:0")
        assert code == 2
        assert "no dead letter at 0:0: partition 0 ends at offset 0" in err
        code, _out, err = _run(fresh, capsys, "replay", "--all", "--yes")
        assert (code, err.strip()) == (0, "nothing to replay")
    finally:
        fresh.close()


@pytest.mark.parametrize(
    ("position", "message"),
    [
        ("0:99", "no dead letter at 0:99: partition 0 ends at offset 1"),
        ("7:0", "no dead letter at 7:0: auditstream.dlq has partitions [0]"),
        ("x", "is not a DLQ position"),
        ("-3", "partition and offset are never negative"),
    ],
)
def test_a_bogus_position_is_named(
    log: Log, capsys: pytest.CaptureFixture[str], position: str, message: str
) -> None:
    _dead(log, ONE)
    code, _out, err = _run(log, capsys, "show", position)
    assert code == 2
    assert message in err
    code, out, err = _run(log, capsys, "replay", "--offset", position, "--yes")
    assert code == 2
    assert "nothing replayed" in err or message in err
    assert out == ""


def test_large_values_and_escapes_everywhere(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    """A value just under the 1 MB record limit, kept whole, and a 5 MB one that the DLQ
    keeps only the start of (``dlq.value.size``): neither floods the terminal, neither
    sends it a control character, and the cut one is replayed only with a fixed value."""
    big = b"\x1b[6n" + bytes(range(256)) * 3_500  # 896,004 bytes, a terminal query in front
    hostile = (
        ("dlq.reason", b"\x1b[1mbold"),
        ("dlq.detail", "\u202e\x1b[2J".encode()),
        ("dlq.stage", b"router"),
        ("\x1bname", b"\xff\x00"),
    )
    _dead(
        log,
        OutgoingRecord(topics.DEAD_LETTERS, big, b"\x9b\x1b]52;c;cHduZWQ=\x07", hostile),
        OutgoingRecord(
            topics.DEAD_LETTERS,
            big[: 64 * 1024],
            b"acme",
            (*hostile[:3], ("dlq.value.size", b"5242880")),
        ),
    )
    code, out, err = _run(log, capsys, "list")
    assert code == 0
    code2, out2, _err2 = _run(log, capsys, "show", "0", "--bytes", "64")
    assert code2 == 0
    code3, out3, _err3 = _run(log, capsys, "show", "1", "--json")
    assert code3 == 0
    for text in (out, err, out2, out3):
        assert all(ch == "\n" or ch.isprintable() for ch in text), text[:300]
    assert "896004" in out
    assert "5242880 (cut)" in out
    assert "\\x1b[1mbold" in out2
    assert "... 895940 more bytes" in out2
    assert len(out2) < 10_000
    assert json.loads(out3)["cut"] == ["value"]
    code, _out, err = _run(log, capsys, "replay", "--offset", "1", "--yes", "--force")
    assert code == 1
    assert "holds only part of the original" in err


def test_sink_stage_dead_letters_are_rerouted_once(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff\xff\xff\xff"
    copies = [
        dead_letter(
            Record(topics.destination_topic(d), 0, 3, b"acme", corrupt, HEADERS),
            stage="sink",
            reason="malformed",
            detail="corrupt body",
        )
        for d in ("acme-a", "acme-b")
    ]
    _dead(log, *copies)
    code, out, err = _run(log, capsys, "replay", "--stage", "sink", "--dry-run")
    assert code == 0
    assert out.startswith("would send 0:0 (sink/malformed) -> auditstream.activity")
    assert "skipped 0:1: the same event as 0:0" in err
    assert _read(log, topics.ACTIVITY, 0, timeout=0.5) == []  # a dry run sends nothing
    code, out, err = _run(log, capsys, "replay", "--stage", "sink", "--yes")
    assert code == 0, err
    (sent,) = _read(log, topics.ACTIVITY, 1)
    assert (sent.key, sent.value) == (b"acme", corrupt)
    assert sent.header(REPLAYED_FROM) == b"0:0"
    assert not any(k.startswith("dlq.") for k, _v in sent.headers)
    assert topics.destination_topic("acme-a") not in log.list_topics()  # never written to


def test_replay_asks_first_and_refuses_an_unnarrowed_selection(
    log: Log, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _dead(log, ONE)
    code, _out, err = _run(log, capsys, "replay")
    assert code == 2
    assert "--all" in err
    code, _out, err = _run(log, capsys, "replay", "--all", "--value-file", "f.json")
    assert code == 2
    assert "one record" in err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    code, _out, err = _run(log, capsys, "replay", "--all")
    assert code == 1
    assert "nothing replayed" in err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("y\n"))
    code, out, err = _run(log, capsys, "replay", "--all", "--actor", "ops")
    assert code == 0, err
    assert "replayed 1 records" in out
    (line,) = [x for x in err.splitlines() if "dlq replay" in x]  # cli logs to stderr
    assert " INFO auditstream: dlq replay " in line
    assert " by ops: 1 records to auditstream.activity (0:0)" in line
    assert len(_read(log, topics.ACTIVITY, 1)) == 1


def test_each_subcommand_explains_itself_in_a_real_process() -> None:
    for action in ("list", "show", "replay"):
        result = subprocess.run(
            [sys.executable, "-m", "auditstream", "dlq", action, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert f"usage: auditstream dlq {action}" in result.stdout
    assert "replayed.from" in result.stdout
    assert "--value-file" in result.stdout


def test_the_readme_commands_parse() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = sh_blocks(section(readme, "Dead letters"))
    parsed = [cli.build_parser().parse_args(shlex.split(c.text)[1:]) for c in commands(block)]
    assert [(a.command, a.dlq_command) for a in parsed] == [
        ("dlq", "list"),
        ("dlq", "show"),
        ("dlq", "replay"),
    ]


def test_progress_on_a_large_topic_goes_to_stderr(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead(log, *[ONE] * 10_500)
    code, out, err = _run(log, capsys, "list", "--limit", "1", "--json")
    assert code == 0
    assert [r["dlq"] for r in json.loads(out)] == ["0:10499"]
    assert "dlq: read 10,000 of 10,500 dead letters" in err
    assert "dlq: read 10,500 of 10,500 dead letters" in err
    assert "1 of 10500 dead letters shown" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "0"],
        ["list", "--bytes", "-1"],
        ["list", "--from-offset", "-2"],
        ["show", "0", "--bytes", "-1"],
        ["replay", "--all", "--limit", "0", "--yes"],
        ["replay", "--all", "--max-replays", "0", "--yes"],
    ],
)
def test_numbers_out_of_range_are_refused(
    log: Log, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    _dead(log, ONE)
    code, out, err = _run(log, capsys, *argv)
    assert code == 2
    assert "must be at least" in err
    assert out == ""
