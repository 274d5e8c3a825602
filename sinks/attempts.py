"""One delivery attempt: decode a sealed batch, write it once, report what happened.

This is the only code that runs on delivery threads. It never touches the consumer, the
settings or the worker's state: it gets everything it needs as arguments and returns an
:class:`AttemptResult`, which the poll loop applies.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.schemas import codec
from auditstream.schemas.errors import CodecError
from auditstream.sinks.base import NOTHING_WRITTEN, Sink, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.lanes import Delivery, Lane, SinkFactory
from auditstream.sinks.redaction import redact
from auditstream.sinks.shapes import RENDER_FAILED, try_render

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that cannot be decoded: it goes to the dead-letter topic once its batch is
    stored."""

    record: Record
    reason: str
    detail: str


@dataclass(slots=True)
class AttemptResult:
    lane: Lane
    delivery: Delivery
    sink_type: str
    written: WriteResult | None
    """What was delivered; None when the attempt failed."""
    error: DeliveryError | None = None
    retryable: bool = False
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0


def materialize(
    batch: Batch, redact_fields: Iterable[str], schema: str = "native"
) -> tuple[Batch, list[Reject]]:
    """``batch`` with its records decoded into ``events`` (redacted), and the records that
    could not be decoded or that the event shape ``schema`` cannot render (reason
    ``render_failed``: one such event must not hold its batch back). For a shape other than
    ``native``, each event is rendered here once and its document kept in ``documents``, which
    the sink writes as is (rendering a shape costs tens of microseconds an event; the native
    event is rendered by the sink, which alone knows whether it writes JSON). Pure: the same
    batch always gives the same events and documents."""
    fields = tuple(redact_fields)
    events = []
    documents: list[bytes] = []
    rejects = []
    for record in batch.records:
        try:
            event = codec.decode(record.value)
        except CodecError as exc:
            rejects.append(Reject(record, exc.reason, str(exc)))
            continue
        if fields:
            redact(event, fields)
        if schema != "native":
            document, problem = try_render(schema, event)
            if document is None:
                rejects.append(Reject(record, RENDER_FAILED, problem or schema))
                continue
            documents.append(document)
        events.append(event)
    if schema == "native":
        return dataclasses.replace(batch, events=events), rejects
    shaped = dataclasses.replace(batch, events=events, documents=documents, documents_schema=schema)
    return shaped, rejects


def attempt(
    lane: Lane, delivery: Delivery, destination: Destination, factory: SinkFactory
) -> AttemptResult:
    """Write ``delivery`` once through ``lane``'s sink for ``destination``. Never raises: a
    failure is the result's ``error`` (settings no sink can work with are a permanent
    ``invalid_config``; an unexpected exception, a bug or an unmapped vendor error, is a
    transient ``internal`` so the batch is never lost)."""
    started = time.perf_counter()
    try:
        sink = lane.sink_for(destination, factory)
    except (ConfigError, ValueError) as exc:
        refused = PermanentError(str(exc), cause="invalid_config")
        return AttemptResult(lane, delivery, destination.type, None, refused, False)
    sink_type = sink.type
    rejects: list[Reject] = []
    try:
        written = _write_encoded(sink, delivery)
        if written is None:
            batch, rejects = materialize(delivery.batch, delivery.redact, destination.schema)
            written = sink.write(batch) if batch.events else NOTHING_WRITTEN
    except DeliveryError as exc:
        return _failed(lane, delivery, sink_type, exc, sink.is_retryable(exc), started)
    except Exception as exc:  # never lose the batch: retry it
        log.exception("unexpected error writing to destination %s", lane.destination_id)
        internal = TransientError(repr(exc), cause="internal")
        return _failed(lane, delivery, sink_type, internal, True, started)
    seconds = time.perf_counter() - started
    return AttemptResult(lane, delivery, sink_type, written, None, False, rejects, seconds)


def _write_encoded(sink: Sink, delivery: Delivery) -> WriteResult | None:
    """The batch stored from its records as they are (a sink that can: Avro containers framed
    from the bodies, ADR 025), or None when it must be decoded first. Never with field
    redaction: the bodies would be written unredacted."""
    write_encoded = getattr(sink, "write_encoded", None)
    if write_encoded is None or delivery.redact:
        return None
    written: WriteResult | None = write_encoded(delivery.batch)
    return written


def _failed(
    lane: Lane,
    delivery: Delivery,
    sink_type: str,
    error: DeliveryError,
    retryable: bool,
    started: float,
) -> AttemptResult:
    seconds = time.perf_counter() - started
    return AttemptResult(lane, delivery, sink_type, None, error, retryable, [], seconds)
