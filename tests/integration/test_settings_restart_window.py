"""A settings change takes effect exactly at its audit event also when the router that routes
it started after the change was written: restarted (both logs) or given the partition by a
rebalance (Kafka), ADR 017's restart window.

The change is written as the settings API writes one (settings record and audit event in one
transaction, one revision) with the headers naming the record it replaced.
"""

from __future__ import annotations

import time
from contextlib import closing

from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import new_revision, publish_settings, with_revision
from auditstream.producers.sdk import ActivityProducer, to_record
from devservices.kafka import KafkaBroker
from tests.factories import make_event

KEEP, NEW = "acme-keep", "acme-new"
OLD = AccountSettings.model_validate(
    {"account_id": "acme", "destinations": [{"id": KEEP, "type": "local", "path": KEEP}]}
)
CHANGED = AccountSettings.model_validate(
    {
        "account_id": "acme",
        "destinations": [
            {"id": KEEP, "type": "local", "path": KEEP},
            {"id": NEW, "type": "local", "path": NEW},
        ],
    }
)


def _produce(log: Log, n: int) -> list[bytes]:
    ids = []
    with ActivityProducer(log) as producer:
        for _ in range(n):
            event = make_event(account_id="acme", category="account", activity="user_login")
            producer.send(event)
            ids.append(str(event["event_id"]).encode())
    return ids


def _change(log: Log) -> None:
    """acme gets destination NEW, as the settings API writes a change."""
    log.create_topic(topics.destination_topic(NEW))
    event = make_event(account_id="acme", category="account", activity="audit_log_streaming")
    records = with_revision(
        [
            OutgoingRecord(topics.SETTINGS, encode_settings(CHANGED), key=b"acme"),
            to_record(event),
        ],
        new_revision(),
        previous=encode_settings(OLD),  # published without a revision
    )
    producer = log.transactional_producer("test-settings-api")
    try:
        producer.produce_atomically(records)
    finally:
        producer.close()


def _route_all(router: Router, total: int) -> None:
    deadline = time.monotonic() + 90
    while (router.consumed < total or router.lag()) and time.monotonic() < deadline:
        router.step()
    assert router.lag() == 0


def _ids_in(log: Log, topic: str, sent: list[bytes]) -> set[bytes]:
    values: list[bytes] = []
    with closing(log.reader(topic)) as reader:
        empty = 0
        while empty < 3:
            got = reader.poll(1000, 0.5)
            values.extend(r.value for r in got)
            empty = 0 if got else empty + 1
    return {e for e in sent if any(e in v for v in values)}


def test_a_router_restarted_after_a_change_applies_it_at_its_audit_event(any_log: Log) -> None:
    log = any_log
    publish_settings(log, [OLD])
    first = _produce(log, 3)
    with closing(Router(log, poll_timeout=0.05)) as router:  # routes and commits, then stops
        _route_all(router, len(first))
    before = _produce(log, 4)  # after the commit, before the change
    _change(log)
    after = _produce(log, 4)
    with closing(Router(log, poll_timeout=0.05)) as router:  # starts after the change
        _route_all(router, len(before) + 1 + len(after))
    sent = first + before + after
    assert _ids_in(log, topics.destination_topic(KEEP), sent) == set(sent)
    assert _ids_in(log, topics.destination_topic(NEW), sent) == set(after)


def test_a_change_pending_at_the_routers_commit_applies_at_its_audit_event_after_a_restart(
    any_log: Log,
) -> None:
    log = any_log
    publish_settings(log, [OLD])
    # The first router reads the change (held: its audit event is ahead) and commits the
    # events before it only; a batch of 2 stops short of the audit event.
    with closing(Router(log, poll_timeout=0.05, batch_size=2)) as router:
        router.step()
        before = _produce(log, 4)
        _change(log)
        after = _produce(log, 4)
        router.settings.catch_up()
        assert router.settings.pending("acme")
        deadline = time.monotonic() + 60
        while router.consumed < 2 and time.monotonic() < deadline:
            router.step()
        assert 0 < router.consumed < len(before)
        assert router.settings.pending("acme")
    with closing(Router(log, poll_timeout=0.05)) as router:
        _route_all(router, len(before) + 1 + len(after) - 2)
    sent = before + after
    assert _ids_in(log, topics.destination_topic(KEEP), sent) == set(sent)
    assert _ids_in(log, topics.destination_topic(NEW), sent) == set(after)


def test_a_router_given_the_partition_by_a_rebalance_applies_a_change_at_its_audit_event(
    kafka_broker: KafkaBroker,
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    try:
        log.create_topic(topics.ACTIVITY, partitions=2)
        publish_settings(log, [OLD])
        routers = [Router(log, poll_timeout=0.05, activity_partitions=2) for _ in range(2)]
        try:
            probe = _produce(log, 1)
            # Both in the group, one partition each, and the probe routed: acme's partition
            # then has a commit.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                for r in routers:
                    r.step()
                owned = [r._consumer.assignment() for r in routers]
                if all(len(o) == 1 for o in owned) and sum(r.consumed for r in routers) == 1:
                    break
            owner = next(r for r in routers if r.consumed == 1)
            stays = next(r for r in routers if r is not owner)
            owner.close()  # leaves the group: the other router will be given its partition
            routers.remove(owner)
            assert stays.consumed == 0
            before = _produce(log, 4)
            _change(log)
            after = _produce(log, 4)
            stays.settings.catch_up()  # read before the partition comes: held to its event
            assert stays.settings.pending("acme")
            _route_all(stays, len(before) + 1 + len(after))
        finally:
            for r in routers:
                r.close()
        sent = probe + before + after
        assert _ids_in(log, topics.destination_topic(KEEP), sent) == set(sent)
        assert _ids_in(log, topics.destination_topic(NEW), sent) == set(after)
    finally:
        log.close()
