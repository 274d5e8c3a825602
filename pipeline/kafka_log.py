"""The Kafka log (confluent-kafka): the production backend.

Producers are idempotent with ``acks=all``; the router's produce-and-commit is a Kafka
transaction (exactly-once from the activity topic to the destination topics); consumers read
committed data only and never auto-commit.

Every client logs through Python logging (:mod:`pipeline.kafka_client_log`): librdkafka's
lines go to the ``auditstream.kafka`` logger, each repeated line at most once per window.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from re import Pattern
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
)
from confluent_kafka import Consumer as _KConsumer
from confluent_kafka import Producer as _KProducer
from confluent_kafka import TopicPartition as _KTP
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from auditstream.pipeline.errors import (
    BrokerUnreachable,
    FencedError,
    LogError,
    RecordRefused,
    Refusal,
    TransactionAborted,
)
from auditstream.pipeline.kafka_client_log import KafkaClientLog, LastProblem, brief
from auditstream.pipeline.log import (
    Consumer,
    DeliveryCallback,
    OutgoingRecord,
    Record,
    TopicPartition,
    metadata_of,
)
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES

log = logging.getLogger(__name__)

_ADMIN_TIMEOUT_S = 30.0
_BROKER_HINT = "check that a broker runs there and that the address is right"


def _err(exc: BaseException, what: str) -> LogError:
    return LogError(f"kafka: {what}: {exc}")


def _timed_out(what: str) -> LogError:
    return LogError(
        f"kafka: {what}: no answer within {_ADMIN_TIMEOUT_S:g} s; check that the brokers are "
        "up and reachable"
    )


class KafkaLog:
    """A :class:`pipeline.log.Log` on a Kafka cluster. ``extra`` is passed to every client
    (security settings such as ``security.protocol`` or ``sasl.*``; a ``logger`` there replaces
    the deduplicating one)."""

    name = "kafka"

    def __init__(self, bootstrap: str, extra: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self._extra = dict(extra or {})
        # The producers' own limit (librdkafka refuses a larger record before sending it);
        # the router checks copies against the same number.
        self.max_record_bytes = int(self._extra.get("message.max.bytes", MAX_RECORD_BYTES))
        self._closed = False
        # One for all clients: the same line from every client counts as one repeat.
        self._client_log = KafkaClientLog()
        self._admin: AdminClient | None = AdminClient(self._conf())
        self._meta_consumer: _KConsumer | None = None
        self._meta_lock = threading.Lock()

    @property
    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            raise LogError("kafka: the log is closed")
        return self._admin

    def _conf(self, **more: Any) -> dict[str, Any]:
        """The configuration of a new client. Raises :class:`LogError` once the log is closed:
        a client made then would outlive it."""
        if self._closed:
            raise LogError("kafka: the log is closed")
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "logger": self._client_log,
            **self._extra,
        }
        conf.update(more)
        return conf

    def _admin_done(self) -> None:
        """Hand the admin client's queued log lines to Python logging (confluent-kafka hands
        them over only when a client is polled)."""
        if self._admin is not None:
            self._admin.poll(0)

    def wait_for_broker(self, timeout_s: float, hint: str = _BROKER_HINT) -> None:
        """Return once a broker answers a metadata request. Raises :class:`BrokerUnreachable`
        (naming the bootstrap address, the client's last complaint and ``hint``) if none does
        within ``timeout_s`` seconds.

        The request goes through a client of its own that logs nothing: while no broker
        answers, every reconnect attempt would be a log line, and the error says it all."""
        problem = LastProblem()
        probe = AdminClient(self._conf(logger=problem))
        try:
            probe.list_topics(timeout=timeout_s)
            reached = True
        except KafkaException:
            probe.poll(0)  # collect the lines that say why
            reached = False
        # The last reference: the client and its threads end now. The error is raised after
        # this, outside the handler, so its traceback holds no frame that holds the client.
        del probe
        if not reached:
            cause = brief(problem.line) if problem.line else None
            raise BrokerUnreachable(self.bootstrap, timeout_s, cause, hint)

    def create_topic(self, topic: str, partitions: int = 1, compacted: bool = False) -> None:
        config = {"cleanup.policy": "compact"} if compacted else {}
        futures = self._admin_client.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=-1, config=config)],
            operation_timeout=_ADMIN_TIMEOUT_S,
        )
        try:
            futures[topic].result(timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise _err(exc, f"create topic {topic}") from exc
        except TimeoutError as exc:
            raise _timed_out(f"create topic {topic}") from exc
        finally:
            self._admin_done()

    def delete_topic(self, topic: str) -> None:
        futures = self._admin_client.delete_topics([topic], operation_timeout=_ADMIN_TIMEOUT_S)
        try:
            futures[topic].result(timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise _err(exc, f"delete topic {topic}") from exc
        except TimeoutError as exc:
            raise _timed_out(f"delete topic {topic}") from exc
        finally:
            self._admin_done()

    def list_topics(self) -> set[str]:
        try:
            return set(self._admin_client.list_topics(timeout=_ADMIN_TIMEOUT_S).topics)
        except KafkaException as exc:
            raise _err(exc, "list topics") from exc
        finally:
            self._admin_done()

    def _partition_ids(self, topic: str) -> list[int]:
        try:
            found = self._admin_client.list_topics(topic, timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise _err(exc, f"metadata of {topic}") from exc
        finally:
            self._admin_done()
        meta = found.topics.get(topic)
        if meta is None or meta.error is not None:
            raise LogError(f"topic {topic!r} does not exist")
        return sorted(meta.partitions)

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        partitions = self._partition_ids(topic)
        # One metadata client for every thread of the process (a sink worker's destination
        # signals ask from their own thread): the lock keeps one thread from replacing it
        # while another is using it.
        with self._meta_lock:
            if self._meta_consumer is None:
                self._meta_consumer = _KConsumer(
                    self._conf(**{"group.id": "auditstream-metadata", "enable.auto.commit": False})
                )
            out = {}
            for p in partitions:
                try:
                    _low, high = self._meta_consumer.get_watermark_offsets(
                        _KTP(topic, p), timeout=_ADMIN_TIMEOUT_S, cached=False
                    )
                except KafkaException as exc:  # e.g. a leader moving while a broker restarts
                    # Its metadata can stay stale after a broker restart (_UNKNOWN_PARTITION on
                    # every call): the next call gets a fresh client.
                    stale, self._meta_consumer = self._meta_consumer, None
                    stale.close()
                    raise _err(exc, f"end offsets of {topic}") from exc
                out[TopicPartition(topic, p)] = int(high)
            self._meta_consumer.poll(0)  # hand its queued log lines over
        return out

    def producer(self) -> KafkaProducer:
        return KafkaProducer(
            _KProducer(
                self._conf(
                    **{
                        "enable.idempotence": True,
                        "acks": "all",
                        "linger.ms": 5,
                        "compression.type": "lz4",
                        "message.max.bytes": self.max_record_bytes,
                    }
                )
            )
        )

    def transactional_producer(self, transactional_id: str) -> KafkaTransactionalProducer:
        producer = _KProducer(
            self._conf(
                **{
                    "transactional.id": transactional_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "message.max.bytes": self.max_record_bytes,
                }
            )
        )
        try:
            producer.init_transactions(_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise _err(exc, "init transactions") from exc
        return KafkaTransactionalProducer(producer)

    def consumer(self, group: str, topics: Sequence[str] | Pattern[str]) -> KafkaConsumer:
        conf = self._conf(
            **{
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # New destination topics must be picked up within seconds, not minutes.
                "topic.metadata.refresh.interval.ms": 2000,
                "partition.assignment.strategy": "cooperative-sticky",
                # A crashed member's partitions move on after 10 s, not the default 45 s.
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 2000,
            }
        )
        subscription = [topics.pattern] if isinstance(topics, Pattern) else list(topics)
        return KafkaConsumer(_KConsumer(conf), group, subscription=subscription)

    def _utility_consumer(self, group: str = "auditstream-metadata") -> _KConsumer:
        return _KConsumer(self._conf(**{"group.id": group, "enable.auto.commit": False}))

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]:
        # A consumer that never subscribes does not join the group: it only fetches offsets.
        consumer = self._utility_consumer(group)
        try:
            tps = [_KTP(topic, p) for p in self._partition_ids(topic)]
            result = consumer.committed(tps, timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise _err(exc, f"committed offsets of {group}") from exc
        finally:
            consumer.close()
        return {TopicPartition(t.topic, t.partition): t.offset for t in result if t.offset >= 0}

    def timestamp_at(self, tp: TopicPartition, offset: int) -> int | None:
        consumer = self._utility_consumer(f"auditstream-peek-{uuid.uuid4()}")
        try:
            consumer.assign([_KTP(tp.topic, tp.partition, offset)])
            for msg in consumer.consume(num_messages=1, timeout=5.0):
                if msg.error() is None:
                    return int(msg.timestamp()[1])
            return None
        except KafkaException as exc:
            raise _err(exc, f"record of {tp.topic}[{tp.partition}]@{offset}") from exc
        finally:
            consumer.close()

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        consumer = self._utility_consumer()
        try:
            (found,) = consumer.offsets_for_times(
                [_KTP(tp.topic, tp.partition, timestamp_ms)], timeout=_ADMIN_TIMEOUT_S
            )
        except KafkaException as exc:
            raise _err(exc, "offsets for times") from exc
        finally:
            consumer.close()
        if found.offset < 0:
            return self.end_offsets(tp.topic)[tp]
        return int(found.offset)

    def reader(self, topic: str) -> KafkaConsumer:
        conf = self._conf(
            **{
                "group.id": f"auditstream-reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        consumer = _KConsumer(conf)
        consumer.assign([_KTP(topic, p, OFFSET_BEGINNING) for p in self._partition_ids(topic)])
        return KafkaConsumer(consumer, "", subscription=None)

    def close(self) -> None:
        self._closed = True
        with self._meta_lock:
            if self._meta_consumer is not None:
                self._meta_consumer.close()
                self._meta_consumer = None
        self._admin = None  # the last reference: the admin client and its threads end now


def _headers(msg: Any) -> tuple[tuple[str, bytes], ...]:
    raw = msg.headers()
    if not raw:
        return ()
    # Called for every record read: the common case (no null value) without a generator.
    for _name, value in raw:
        if value is None:
            return tuple((k, v if v is not None else b"") for k, v in raw)
    return tuple(raw)


def _release(producer: _KProducer, timeout: float = 30.0) -> None:
    """Give queued records ``timeout`` seconds, then fail what is left, so that dropping the
    client does not wait for it. A client that is only flushed keeps its threads connecting to
    the brokers until it is garbage collected (long after a test stopped its broker)."""
    producer.flush(timeout)
    producer.purge()
    producer.poll(0)  # serve the delivery reports of purged records
    # Ends the client's threads now, even if a traceback still holds a reference to it.
    producer.close()


class KafkaProducer:
    def __init__(self, producer: _KProducer) -> None:
        self._p: _KProducer | None = producer

    @property
    def _client(self) -> _KProducer:
        if self._p is None:
            raise LogError("kafka: the producer is closed")
        return self._p

    def produce(self, record: OutgoingRecord, on_delivery: DeliveryCallback | None = None) -> None:
        def report(err: KafkaError | None, _msg: Any) -> None:
            if on_delivery is not None:
                on_delivery(None if err is None else LogError(f"kafka: {err.str()}"), record)

        client = self._client
        while True:
            try:
                client.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    on_delivery=report,
                )
                break
            except BufferError:
                # Local queue full: serve delivery reports to make room, then try again.
                client.poll(0.1)
            except KafkaException as exc:
                raise _err(exc, f"produce to {record.topic}") from exc
        client.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        return int(self._client.flush(timeout))

    def close(self) -> None:
        if self._p is not None:
            _release(self._p)
            self._p = None  # the last reference: the client and its threads end now


# Per-record errors that producing the same record again cannot cure, by reason code.
_PERMANENT = {
    KafkaError.MSG_SIZE_TOO_LARGE: "too_large",
    KafkaError.RECORD_LIST_TOO_LARGE: "too_large",
    KafkaError.INVALID_MSG_SIZE: "too_large",
    KafkaError.INVALID_RECORD: "invalid_record",
    KafkaError.INVALID_MSG: "invalid_record",
    KafkaError.INVALID_TIMESTAMP: "invalid_record",
    KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT: "invalid_record",
    KafkaError._INVALID_ARG: "invalid_record",
    KafkaError._BAD_MSG: "invalid_record",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "not_authorized",
    KafkaError.POLICY_VIOLATION: "policy_violation",
}
# Errors of the producer's or the cluster's state, reported on each record: never the
# record's fault (nor are librdkafka's local errors: timeouts, transport, purges).
_NOT_THE_RECORD = frozenset(
    {
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.PRODUCER_FENCED,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_TXN_STATE,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.INVALID_REQUIRED_ACKS,
    }
)


def refusal_of(index: int, err: KafkaError) -> Refusal | None:
    """What a per-record error says about the record: a permanent refusal, a refusal that
    may pass on a retry (an unexpected non-retriable broker error), or None when the record
    is not at fault (timeouts, the broker away, the transaction's own state)."""
    code = err.code()
    reason = _PERMANENT.get(code)
    if reason is not None:
        return Refusal(index, reason, err.str(), permanent=True)
    if err.retriable() or code < 0 or code in _NOT_THE_RECORD:
        return None
    return Refusal(index, err.name().lower(), err.str(), permanent=False)


_ABORT_ATTEMPTS = 3


class _Deadline(Exception):
    """The local produce queue stayed full until the transaction's deadline."""


class KafkaTransactionalProducer:
    """Each transaction is bounded: producing, sending the offsets and committing share
    ``timeout`` seconds, and an abort gets as long again. An abort that does not finish
    (the broker away) is retried before the next transaction begins."""

    def __init__(self, producer: _KProducer, timeout: float = _ADMIN_TIMEOUT_S) -> None:
        self._p: _KProducer | None = producer
        self._timeout = timeout
        self._abort_pending = False
        self._abort_failures = 0

    @property
    def _client(self) -> _KProducer:
        if self._p is None:
            raise LogError("kafka: the producer is closed")
        return self._p

    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        """See :meth:`pipeline.log.TransactionalProducer.produce_and_commit`. Raises
        :class:`RecordRefused` (a :class:`TransactionAborted`) naming the records the broker
        or the client refused."""
        if not isinstance(consumer, KafkaConsumer):
            raise TypeError("a Kafka transaction needs a Kafka consumer")
        self._transaction(records, consumer, offsets)

    def produce_atomically(self, records: Sequence[OutgoingRecord]) -> None:
        self._transaction(records, None, {})

    def _transaction(
        self,
        records: Sequence[OutgoingRecord],
        consumer: KafkaConsumer | None,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        client = self._client
        if self._abort_pending:
            self._abort(client)
        deadline = time.monotonic() + self._timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        failed: dict[int, KafkaError] = {}
        try:
            client.begin_transaction()
        except KafkaException as exc:
            raise self._failed_to_begin(exc) from exc
        try:
            for i, r in enumerate(records):
                self._produce(client, i, r, failed, deadline)
            if consumer is not None and offsets:
                client.send_offsets_to_transaction(
                    [
                        _KTP(tp.topic, tp.partition, int(off), metadata=metadata_of(off))
                        for tp, off in offsets.items()
                    ],
                    consumer.group_metadata(),
                    left(),
                )
            client.commit_transaction(left())
            client.poll(0)  # hand queued log lines over
        except (KafkaException, _Deadline) as exc:
            kerr = exc.args[0] if isinstance(exc, KafkaException) else None
            if kerr is not None and kerr.fatal():
                raise FencedError(f"kafka transaction fenced or fatal: {kerr.str()}") from exc
            try:
                self._abort(client)
            finally:
                # A refused batch can fail the transaction before the commit served its
                # delivery reports (send_offsets_to_transaction sees the error state first).
                client.poll(0)
            refusals = [f for i, e in sorted(failed.items()) if (f := refusal_of(i, e))]
            if refusals:
                raise RecordRefused(refusals) from exc
            why = kerr.str() if kerr is not None else str(exc)
            raise TransactionAborted(f"kafka transaction aborted: {why}") from exc

    def _produce(
        self,
        client: _KProducer,
        index: int,
        r: OutgoingRecord,
        failed: dict[int, KafkaError],
        deadline: float,
    ) -> None:
        def report(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failed[index] = err

        while True:
            try:
                client.produce(
                    r.topic, value=r.value, key=r.key, headers=list(r.headers), on_delivery=report
                )
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room, for a bounded time.
                if time.monotonic() >= deadline:
                    raise _Deadline(
                        f"the local produce queue stayed full for {self._timeout:g} s"
                    ) from None
                client.poll(0.1)
            except KafkaException as exc:
                failed[index] = exc.args[0]  # refused by the client itself (e.g. too large)
                raise

    def _failed_to_begin(self, exc: KafkaException) -> LogError:
        kerr = exc.args[0]
        if kerr.fatal():
            return FencedError(f"kafka transaction fenced or fatal: {kerr.str()}")
        return TransactionAborted(f"kafka: cannot begin a transaction: {kerr.str()}")

    def _abort(self, client: _KProducer) -> None:
        """Abort the open transaction. Raises :class:`TransactionAborted` if the abort did not
        finish in time (it is retried before the next transaction), and :class:`FencedError`
        if the producer cannot go on: a fatal error, or an abort that failed
        :data:`_ABORT_ATTEMPTS` times in a row (e.g. refused in the state a timed-out commit
        left): a router that cannot abort must stop and be restarted, not retry forever."""
        try:
            client.abort_transaction(self._timeout)
        except KafkaException as exc:
            kerr = exc.args[0]
            self._abort_failures += 1
            if kerr.fatal() or self._abort_failures >= _ABORT_ATTEMPTS:
                raise FencedError(
                    f"kafka: transaction abort failed {self._abort_failures} time(s), last: "
                    f"{kerr.str()}; the producer must be recreated"
                ) from exc
            self._abort_pending = True
            raise TransactionAborted(
                f"kafka: transaction abort not finished ({kerr.str()}); retried before the "
                "next transaction"
            ) from exc
        self._abort_pending = False
        self._abort_failures = 0

    def close(self) -> None:
        if self._p is not None:
            _release(self._p)
            self._p = None  # the last reference: the client and its threads end now


class KafkaConsumer:
    def __init__(self, consumer: _KConsumer, group: str, subscription: list[str] | None) -> None:
        self._c = consumer
        self.group = group
        self._groupless = subscription is None
        self._revoke_callbacks: list[Callable[[set[TopicPartition]], None]] = []
        self._paused: set[TopicPartition] = set()
        if subscription is not None:
            self._c.subscribe(subscription, on_revoke=self._revoked, on_lost=self._revoked)

    def _revoked(self, _consumer: Any, partitions: list[_KTP]) -> None:
        gone = {TopicPartition(p.topic, p.partition) for p in partitions}
        self._paused -= gone
        for cb in self._revoke_callbacks:
            cb(gone)

    def group_metadata(self) -> Any:
        return self._c.consumer_group_metadata()

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        try:
            msgs = self._c.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise _err(exc, "consume") from exc
        out: list[Record] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise LogError(f"kafka consumer: {err.str()}")
                log.warning("kafka consumer: %s", err.str())
                continue
            ts = m.timestamp()[1]
            out.append(
                Record(
                    str(m.topic()),
                    int(m.partition() or 0),
                    int(m.offset() or 0),
                    m.key(),
                    m.value() or b"",
                    _headers(m),
                    ts,
                )
            )
        return out

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._groupless or not offsets:
            return
        try:
            self._c.commit(
                offsets=[_KTP(tp.topic, tp.partition, off) for tp, off in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            raise _err(exc, "commit offsets") from exc

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        tps = [_KTP(tp.topic, tp.partition) for tp in partitions]
        if self._groupless or not tps:
            return {}
        try:
            result = self._c.committed(tps, timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise _err(exc, "read committed offsets") from exc
        return {TopicPartition(t.topic, t.partition): t.offset for t in result if t.offset >= 0}

    def committed_metadata(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        tps = [_KTP(tp.topic, tp.partition) for tp in partitions]
        if self._groupless or not tps:
            return {}
        try:
            result = self._c.committed(tps, timeout=_ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise _err(exc, "read committed offsets") from exc
        return {
            TopicPartition(t.topic, t.partition): t.metadata or "" for t in result if t.offset >= 0
        }

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(t.topic, t.partition) for t in self._c.assignment()}

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        tps = [_KTP(tp.topic, tp.partition) for tp in partitions]
        if tps:
            self._c.pause(tps)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        tps = [_KTP(tp.topic, tp.partition) for tp in partitions]
        if tps:
            self._c.resume(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._c.seek(_KTP(tp.topic, tp.partition, offset))
        except KafkaException as exc:
            raise _err(exc, f"seek {tp.topic}[{tp.partition}] to {offset}") from exc

    def position(self, tp: TopicPartition) -> int:
        try:
            (found,) = self._c.position([_KTP(tp.topic, tp.partition)])
        except KafkaException as exc:
            raise _err(exc, f"position of {tp.topic}[{tp.partition}]") from exc
        return int(found.offset)

    def on_revoke(self, callback: Callable[[set[TopicPartition]], None]) -> None:
        self._revoke_callbacks.append(callback)

    def close(self) -> None:
        self._c.close()
