"""Offset metadata on the embedded log, and what a router does with commit metadata it cannot
use or that would not fit (ADR 017's restart window)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import commit_metadata, topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import CommitOffset, OutgoingRecord, TopicPartition
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings, with_revision

TP = TopicPartition(topics.ACTIVITY, 0)


def _at_once(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "auditstream_router_settings_applied_at_once_total", {"reason": reason}
    )
    return value or 0.0


def _settings(account_id: str, *dest_ids: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": account_id,
            "destinations": [{"id": d, "type": "local", "path": d} for d in dest_ids],
        }
    )


@pytest.mark.parametrize(
    "metadata", ["", '{"v":1,"s":{"0":3},"r":{}}', "ünï😀 ' ; DROP TABLE records; --", "x" * 10_000]
)
def test_offsets_commit_with_their_metadata(embedded_log: EmbeddedLog, metadata: str) -> None:
    log = embedded_log
    log.create_topic(topics.ACTIVITY)
    producer = log.transactional_producer("t")
    with closing(log.consumer("g", [topics.ACTIVITY])) as consumer:
        producer.produce_and_commit([], consumer, {TP: CommitOffset(7, metadata)})
        assert consumer.committed([TP]) == {TP: 7}
        assert consumer.committed_metadata([TP]) == {TP: metadata}
        consumer.commit({TP: 9})  # a plain offset: no metadata
        assert consumer.committed_metadata([TP]) == {TP: ""}
        assert consumer.committed_metadata([TopicPartition(topics.ACTIVITY, 5)]) == {}
    with closing(log.reader(topics.ACTIVITY)) as reader:
        assert reader.committed_metadata([TP]) == {}


def test_a_file_from_before_offset_metadata_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            CREATE TABLE group_offsets (
                grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
                next_off INTEGER NOT NULL, PRIMARY KEY (grp, topic, part)
            ) WITHOUT ROWID;
            INSERT INTO group_offsets VALUES ('g', 'auditstream.activity', 0, 42);
            """
        )
        conn.commit()
    log = EmbeddedLog(path)
    try:
        log.create_topic(topics.ACTIVITY)
        with closing(log.consumer("g", [topics.ACTIVITY])) as consumer:
            assert consumer.committed([TP]) == {TP: 42}
            assert consumer.committed_metadata([TP]) == {TP: ""}
            consumer.commit({TP: CommitOffset(43, "m")})
            assert consumer.committed_metadata([TP]) == {TP: "m"}
    finally:
        log.close()
    EmbeddedLog(path).close()  # opened again: the column is not added twice


def _change_after_commit(log: EmbeddedLog, metadata: str) -> None:
    """acme's settings, a commit of the router's group with ``metadata``, then a change with a
    revision and its previous settings, written after that commit."""
    old, new = _settings("acme", "d-old"), _settings("acme", "d-old", "d-new")
    publish_settings(log, [old])
    producer = log.transactional_producer("t")
    with closing(log.consumer(topics.ROUTER_GROUP, [topics.ACTIVITY])) as consumer:
        producer.produce_and_commit([], consumer, {TP: CommitOffset(0, metadata)})
    record = OutgoingRecord(topics.SETTINGS, encode_settings(new), key=b"acme")
    producer.produce_atomically(with_revision([record], "r1", previous=encode_settings(old)))


@pytest.mark.parametrize(
    "metadata",
    [
        "",  # committed by an older router
        "not json",
        '{"s":{"0":1},"r":{}}',
        '{"v":9,"s":{"0":1},"r":{}}',
        "\x00" * 5000,
    ],
)
def test_commit_metadata_a_router_cannot_use_applies_changes_at_once(
    embedded_log: EmbeddedLog, metadata: str
) -> None:
    _change_after_commit(embedded_log, metadata)
    before = _at_once("metadata_unreadable")
    with closing(Router(embedded_log, poll_timeout=0.01)) as router:
        router.step()
        assert router.settings.destination("d-new") is not None
        assert router.settings.pending("acme") == []
    assert _at_once("metadata_unreadable") == before + 1


def test_commit_metadata_that_cannot_be_read_applies_changes_at_once(
    embedded_log: EmbeddedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _change_after_commit(embedded_log, '{"v":1,"s":{"0":1},"r":{}}')
    before = _at_once("metadata_unreadable")
    with closing(Router(embedded_log, poll_timeout=0.01)) as router:

        def broker_away(_partitions: object) -> dict[TopicPartition, str]:
            raise LogError("kafka: read committed offsets: timed out")

        monkeypatch.setattr(router._consumer, "committed_metadata", broker_away)
        router.step()
        assert router.settings.destination("d-new") is not None
    assert _at_once("metadata_unreadable") == before + 1


def test_commit_metadata_of_this_version_holds_the_change_back(embedded_log: EmbeddedLog) -> None:
    _change_after_commit(embedded_log, '{"v":1,"s":{"0":1},"r":{}}')
    with closing(Router(embedded_log, poll_timeout=0.01)) as router:
        assert router.settings.destination("d-new") is not None  # read at the start
        router.step()
        assert router.settings.destination("d-new") is None  # back to the commit's settings
        assert router.settings.pending("acme") == ["r1"]


def test_pending_accounts_that_do_not_fit_in_the_metadata_apply_at_once(
    embedded_log: EmbeddedLog,
) -> None:
    log = embedded_log
    names = [f"{i:03d}-" + "ü" * 100 for i in range(40)]
    with closing(Router(log, poll_timeout=0.01)) as router:
        producer = log.transactional_producer("t")
        for name in names:  # changes whose audit events are not routed yet
            record = OutgoingRecord(
                topics.SETTINGS, encode_settings(_settings(name)), key=name.encode()
            )
            producer.produce_atomically(with_revision([record], f"r-{name[:3]}", previous=b""))
        router.step()
        before = _at_once("metadata_full")
        text = router._commit_metadata()
        decoded = commit_metadata.decode(text)
        assert decoded is not None
        assert len(text.encode()) <= commit_metadata.MAX_BYTES
        kept = set(decoded.in_force)
        assert kept
        assert kept < set(names)
        assert _at_once("metadata_full") == before + len(names) - len(kept)
        for name in names:  # those left out apply now, the others wait for their event
            assert (router.settings.account(name) is None) == (name in kept), name


def test_passed_accounts_that_do_not_fit_leave_the_metadata_empty(
    embedded_log: EmbeddedLog,
) -> None:
    with closing(Router(embedded_log, poll_timeout=0.01)) as router:
        for i in range(40):  # audit events routed before their records were read
            router.settings._table.settle(f"{i:03d}-" + "ü" * 100, f"r{i}")
        before = _at_once("metadata_full")
        assert router._commit_metadata() == ""
        assert _at_once("metadata_full") == before + 1
