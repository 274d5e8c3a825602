"""How the Kafka transactional producer maps librdkafka's errors to ours (a fake client)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from auditstream.pipeline.errors import FencedError, RecordRefused, TransactionAborted
from auditstream.pipeline.kafka_log import KafkaTransactionalProducer, refusal_of
from auditstream.pipeline.log import OutgoingRecord


def err(code: int, *, retriable: bool = False, abort: bool = False) -> KafkaError:
    return KafkaError(code, "the reason", retriable=retriable, txn_requires_abort=abort)


class FakeClient:
    """Queues delivery reports; ``reports`` says which records fail with what."""

    def __init__(self) -> None:
        self.reports: dict[int, KafkaError] = {}
        self.commit_error: KafkaError | None = None
        self.abort_errors: list[KafkaError] = []
        self.sync_error: dict[int, KafkaError] = {}
        self.queued: list[Callable[[], None]] = []
        self.aborts = 0
        self._n = 0

    def begin_transaction(self) -> None:
        self._n = 0

    def produce(self, _topic: str, *, on_delivery: Callable[..., None], **_kw: Any) -> None:
        i, self._n = self._n, self._n + 1
        if i in self.sync_error:
            raise KafkaException(self.sync_error[i])
        report = self.reports.get(i)
        self.queued.append(lambda: on_delivery(report, None))

    def poll(self, _timeout: float) -> int:
        queued, self.queued = self.queued, []
        for call in queued:
            call()
        return len(queued)

    def commit_transaction(self, _timeout: float) -> None:
        if self.commit_error is not None:
            raise KafkaException(self.commit_error)
        self.poll(0)

    def abort_transaction(self, _timeout: float) -> None:
        self.aborts += 1
        if self.abort_errors:
            raise KafkaException(self.abort_errors.pop(0))


RECORDS = [OutgoingRecord("t", b"a"), OutgoingRecord("t", b"b"), OutgoingRecord("t", b"c")]


def producer(client: FakeClient) -> KafkaTransactionalProducer:
    return KafkaTransactionalProducer(client, timeout=5.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "reason", "permanent"),
    [
        (err(KafkaError.MSG_SIZE_TOO_LARGE), "too_large", True),
        (err(KafkaError.RECORD_LIST_TOO_LARGE), "too_large", True),
        (err(KafkaError.INVALID_RECORD), "invalid_record", True),
        (err(KafkaError.TOPIC_AUTHORIZATION_FAILED), "not_authorized", True),
        (err(KafkaError.INVALID_CONFIG), "invalid_config", False),
        (err(KafkaError._MSG_TIMED_OUT), None, None),
        (err(KafkaError.NOT_ENOUGH_REPLICAS, retriable=True), None, None),
        (err(KafkaError.INVALID_PRODUCER_EPOCH), None, None),
        (err(KafkaError._PURGE_QUEUE), None, None),
    ],
)
def test_which_errors_are_the_records_fault(
    error: KafkaError, reason: str | None, permanent: bool | None
) -> None:
    found = refusal_of(4, error)
    if reason is None:
        assert found is None
        return
    assert found is not None
    assert (found.index, found.reason, found.permanent) == (4, reason, permanent)


def test_delivery_reports_served_after_the_abort_name_the_refused_records() -> None:
    client = FakeClient()
    client.reports = {1: err(KafkaError.MSG_SIZE_TOO_LARGE), 2: err(KafkaError._PURGE_QUEUE)}
    client.commit_error = err(KafkaError.MSG_SIZE_TOO_LARGE, abort=True)
    with pytest.raises(RecordRefused) as caught:
        producer(client).produce_atomically(RECORDS)
    assert [(r.index, r.reason) for r in caught.value.refusals] == [(1, "too_large")]
    assert client.aborts == 1


def test_a_record_the_client_refuses_at_once_is_named() -> None:
    client = FakeClient()
    client.sync_error = {2: err(KafkaError.MSG_SIZE_TOO_LARGE)}
    with pytest.raises(RecordRefused) as caught:
        producer(client).produce_atomically(RECORDS)
    assert [r.index for r in caught.value.refusals] == [2]


def test_a_failure_naming_no_record_is_a_plain_abort() -> None:
    client = FakeClient()
    client.commit_error = err(KafkaError._TIMED_OUT, retriable=True)
    with pytest.raises(TransactionAborted) as caught:
        producer(client).produce_atomically(RECORDS)
    assert not isinstance(caught.value, RecordRefused)


def test_an_unfinished_abort_is_retried_first_and_never_forever() -> None:
    client = FakeClient()
    client.commit_error = err(KafkaError._TIMED_OUT, retriable=True)
    client.abort_errors = [err(KafkaError._TIMED_OUT, retriable=True)] * 3
    p = producer(client)
    with pytest.raises(TransactionAborted, match="abort not finished"):
        p.produce_atomically(RECORDS)
    with pytest.raises(TransactionAborted, match="abort not finished"):
        p.produce_atomically(RECORDS)  # the pending abort, retried first, fails again
    with pytest.raises(FencedError, match="abort failed 3 time"):
        p.produce_atomically(RECORDS)
    assert client.aborts == 3


def test_a_finished_abort_lets_the_next_transaction_run() -> None:
    client = FakeClient()
    client.commit_error = err(KafkaError._TIMED_OUT, retriable=True)
    client.abort_errors = [err(KafkaError._TIMED_OUT, retriable=True)]
    p = producer(client)
    with pytest.raises(TransactionAborted):
        p.produce_atomically(RECORDS)
    client.commit_error = None
    p.produce_atomically(RECORDS)  # abort retried (succeeds), then the transaction commits
    assert client.aborts == 2
