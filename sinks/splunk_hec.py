"""Splunk HTTP Event Collector sink: a batch POSTed to ``{url}/services/collector/event``.

Each event becomes one HEC event object, ``{"time": <occurred_at, epoch seconds>, "host",
"source", "sourcetype", "index", "event": <the event as our JSON>}``; a request body is such
objects concatenated, gzip-compressed unless turned off, at most ``max_request_bytes`` before
compression (a batch takes as many requests as it needs; an event is never split).

Delivery is at-least-once: HEC has no idempotency key. A batch counts as delivered only when
every one of its requests was accepted; when one fails, the whole batch is sent again, so
Splunk may index some of its events twice (dedup on ``event.event_id``). With ``ack``
(indexer acknowledgement), every request carries the sink's channel and :meth:`write` returns
only once Splunk confirms every request of the batch was indexed, else it raises a transient
error and the batch is sent again.

Request building is pure (:func:`envelope`, :func:`request_bodies`); HEC's answers (its JSON
``code`` and the HTTP status) are mapped onto the error tree by :func:`classify_answer` from
the table :data:`HEC_CODES`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import SplunkHecDestination
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.base import NOTHING_WRITTEN, CheckResult, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.http_batch import (
    HttpExchange,
    Refusal,
    build_client,
    classify_status,
    describe_target,
    gzip_body,
    join_url,
    json_answer,
    split_runs,
)
from auditstream.sinks.render import batch_documents
from auditstream.sinks.retry import is_retryable, parse_retry_after

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"
CHANNEL_HEADER = "X-Splunk-Request-Channel"
CHECK_FIELD = "auditstream_check"
"""Marks the destination check's one event (sent only when the destination names an index)."""

ACK_POLL_FIRST_S = 0.1
ACK_POLL_MAX_S = 2.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HecCode:
    """One of HEC's answer codes: Splunk's words for it, our ``cause``, whether another
    attempt may succeed, and what to check."""

    text: str
    cause: str
    retryable: bool
    hint: str


_AUTH_HINT = "check the destination's token (the HEC token itself, without 'Splunk ')"
_BUSY_HINT = "Splunk is overloaded; if this persists, check the indexers' queues"

HEC_CODES: Mapping[int, HecCode] = {
    1: HecCode("Token disabled", "bad_credentials", False, "enable the token in Splunk"),
    2: HecCode("Token is required", "bad_credentials", False, _AUTH_HINT),
    3: HecCode("Invalid authorization", "bad_credentials", False, _AUTH_HINT),
    4: HecCode("Invalid token", "bad_credentials", False, _AUTH_HINT),
    5: HecCode("No data", "invalid_request", False, "the request had no events"),
    6: HecCode(
        "Invalid data format",
        "invalid_request",
        False,
        "Splunk could not read an event: check splunkd.log (parsing_err) on the HEC",
    ),
    7: HecCode(
        "Incorrect index",
        "index_missing",
        False,
        "the index does not exist or the token may not write to it: create the index, add "
        "it to the token's allowed indexes, or change the destination's index",
    ),
    8: HecCode("Internal server error", "unavailable", True, "check Splunk's health"),
    9: HecCode("Server is busy", "throttled", True, _BUSY_HINT),
    10: HecCode(
        "Data channel is missing",
        "invalid_config",
        False,
        "the token has indexer acknowledgement on: set the destination's ack to true, or "
        "turn acknowledgement off for the token",
    ),
    11: HecCode(
        "Invalid data channel", "invalid_config", False, "check any proxy in front of the HEC"
    ),
    12: HecCode("Event field is required", "invalid_request", False, "an event was empty"),
    13: HecCode("Event field cannot be blank", "invalid_request", False, "an event was empty"),
    14: HecCode(
        "ACK is disabled",
        "invalid_config",
        False,
        "the token has indexer acknowledgement off: turn it on for the token, or set the "
        "destination's ack to false",
    ),
    15: HecCode("Error in handling indexed fields", "invalid_request", False, "check splunkd.log"),
    16: HecCode(
        "Query string authorization is not enabled",
        "invalid_request",
        False,
        "check any proxy in front of the HEC",
    ),
    18: HecCode("HEC is unhealthy, queues are full", "unavailable", True, _BUSY_HINT),
    19: HecCode("HEC is unhealthy, ack service unavailable", "unavailable", True, _BUSY_HINT),
    20: HecCode("HEC is unhealthy, queues are full", "unavailable", True, _BUSY_HINT),
    21: HecCode("Invalid token", "bad_credentials", False, _AUTH_HINT),
    22: HecCode("Token disabled", "bad_credentials", False, "enable the token in Splunk"),
    23: HecCode("Server is shutting down", "unavailable", True, "Splunk is restarting"),
    26: HecCode("HEC queue is at capacity", "throttled", True, _BUSY_HINT),
    27: HecCode("HEC ACK channel is at capacity", "throttled", True, _BUSY_HINT),
}
"""HEC's answer codes (Splunk's "Troubleshoot HTTP Event Collector"), 0, 17, 24 and 25 being
success."""

_REFUSALS: Mapping[int, Refusal] = {
    400: Refusal("invalid_request", "the request was refused as malformed; check the HEC logs"),
    401: Refusal("bad_credentials", _AUTH_HINT),
    403: Refusal("bad_credentials", _AUTH_HINT),
    404: Refusal(
        "invalid_url",
        "no HTTP Event Collector at this address: set url to the HEC base URL (without "
        "/services/collector) and check that HEC is enabled",
    ),
    413: Refusal(
        "http_413",
        "the request is larger than the HEC's max_content_length: lower the destination's "
        "max_request_bytes",
    ),
}
"""Answers without a HEC code (a proxy, a load balancer, an old HEC)."""


# -- request building (pure) -----------------------------------------------------------------------


def epoch_seconds(value: datetime) -> str:
    """``value`` as HEC's ``time``: epoch seconds with microseconds, e.g. ``1795773600.123456``
    (a naive datetime is read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}.{fraction:06d}"


def envelope_fields(destination: SplunkHecDestination) -> bytes:
    """The metadata every event object of ``destination`` carries, as JSON members without
    braces: ``"host":...,"source":...,"sourcetype":...,"index":...`` (unset ones left out)."""
    fields = {
        "host": destination.host,
        "source": destination.source,
        "sourcetype": destination.sourcetype,
        "index": destination.index,
    }
    return orjson.dumps({k: v for k, v in fields.items() if v is not None})[1:-1]


def envelope(event: Mapping[str, Any], document: bytes, fields: bytes) -> bytes:
    """One HEC event object: ``time`` from ``occurred_at`` (left out when it is not a
    datetime: Splunk then uses the time it receives the event), ``fields`` (see
    :func:`envelope_fields`) and ``document``, the event as our JSON, as ``event``."""
    when = event.get("occurred_at")
    head = b'{"time":' + epoch_seconds(when).encode() + b"," if isinstance(when, datetime) else b"{"
    return head + fields + b',"event":' + document + b"}"


def request_bodies(envelopes: Sequence[bytes], max_bytes: int) -> list[bytes]:
    """The envelopes, in order, concatenated into request bodies of at most ``max_bytes``
    (one envelope over it is a request of its own)."""
    runs = split_runs(
        [len(e) for e in envelopes], max_items=max(1, len(envelopes)), max_bytes=max_bytes
    )
    return [b"".join(envelopes[run.start : run.stop]) for run in runs]


# -- answers (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HecAnswer:
    """What a HEC answer body says (each part ``None`` when absent)."""

    code: int | None
    ack_id: int | None = None
    invalid_event: int | None = None
    acks: Mapping[str, bool] | None = None

    @classmethod
    def parse(cls, content: bytes) -> HecAnswer:
        """Read a HEC answer body; an unreadable one has no parts."""
        data = json_answer(content)

        def integer(name: str) -> int | None:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        acks = data.get("acks")
        return cls(
            code=integer("code"),
            ack_id=integer("ackId"),
            invalid_event=integer("invalid-event-number"),
            acks={str(k): v is True for k, v in acks.items()} if isinstance(acks, dict) else None,
        )


def classify_answer(
    status: int,
    headers: Mapping[str, str],
    answer: HecAnswer,
    now: float,
    *,
    target: str,
) -> DeliveryError | None:
    """HEC's answer as ``None`` (accepted) or the error to raise.

    A 2xx is accepted. Otherwise a known HEC ``code`` decides (:data:`HEC_CODES`): transient
    ones carry the ``Retry-After`` asked for, permanent ones name their cause (``index_missing``
    for "Incorrect index", ``bad_credentials`` for token problems, ``invalid_config`` for
    acknowledgement settings that do not match the token's). Without a code, the HTTP status
    decides (:func:`sinks.http_batch.classify_status`).
    """
    if 200 <= status < 300:
        return None
    known = HEC_CODES.get(answer.code) if answer.code is not None else None
    if known is None:
        return classify_status(status, headers, now, target=target, refusals=_REFUSALS)
    which = f" (event {answer.invalid_event} of the request)" if answer.invalid_event else ""
    said = f"{target} answered {status} ({known.text}, code {answer.code}){which}"
    if known.retryable:
        retry_after = parse_retry_after(vendor.header(headers, "Retry-After"), now)
        asked = f", asking to retry after {retry_after:g} s" if retry_after is not None else ""
        return TransientError(
            f"{said}{asked}: {known.hint}", cause=known.cause, retry_after=retry_after
        )
    return PermanentError(f"{said}: {known.hint}", cause=known.cause)


# -- the sink --------------------------------------------------------------------------------------


class SplunkHecSink:
    """Delivers a destination's batches to a Splunk HTTP Event Collector.

    ``client`` is used as given (and left open by :meth:`close`); without one the sink builds
    its own (:func:`sinks.http_batch.build_client`). ``clock`` stamps answers (``Retry-After``
    dates); ``monotonic`` and ``sleep`` time the acknowledgement polls; ``channel`` (a GUID,
    default a new one) is sent with every request when the destination uses ``ack``.
    """

    type: str = "splunk_hec"

    def __init__(
        self,
        destination: SplunkHecDestination,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        address_policy: AddressPolicy | None = None,
        channel: str | None = None,
    ) -> None:
        self._destination = destination
        self._target = describe_target("Splunk HEC", destination.url, destination.id)
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        if client is None:
            client = build_client(
                destination_id=destination.id,
                timeout_s=destination.timeout_s,
                verify_tls=destination.verify_tls,
                ca_file=destination.ca_file,
                address_policy=address_policy,
                target=self._target,
            )
            owns = True
        else:
            owns = False
        self._http = HttpExchange(
            client, target=self._target, address_policy=address_policy, owns_client=owns
        )
        self._fields = envelope_fields(destination)
        self.channel = channel or str(uuid.uuid4())
        self._auth = {
            "Authorization": f"Splunk {destination.token.get_secret_value()}",
            "Content-Type": "application/json",
        }
        if destination.ack:
            self._auth[CHANNEL_HEADER] = self.channel

    def __repr__(self) -> str:
        return f"SplunkHecSink(id={self._destination.id!r}, target={self._target!r})"

    def _url(self, path: str) -> str:
        return join_url(self._destination.url, path)

    def render(self, batch: Batch) -> list[bytes]:
        """The request bodies of ``batch``, uncompressed, in order."""
        documents = batch_documents(batch, self._destination.schema)
        envelopes = [
            envelope(event, document, self._fields)
            for event, document in zip(batch.events, documents, strict=True)
        ]
        return request_bodies(envelopes, self._destination.max_request_bytes)

    def write(self, batch: Batch) -> WriteResult:
        """POST ``batch`` once (as many requests as its size needs) and, with ``ack``, wait
        until Splunk confirms every request was indexed. A batch without events sends nothing.

        Raises :class:`DeliveryError` (see :func:`classify_answer`); with ``ack``, a
        :class:`TransientError` (cause ``timeout``) when confirmations do not all come within
        ``ack_timeout_s``. On a raise nothing counts as delivered: the batch is sent again."""
        if not batch.events:
            return NOTHING_WRITTEN
        bodies = self.render(batch)
        sent = 0
        ack_ids: list[int] = []
        for body in bodies:
            wire = gzip_body(body) if self._destination.gzip else body
            answer = self._post_events(wire)
            sent += len(wire)
            if self._destination.ack:
                ack_ids.append(self._ack_id(answer))
        if ack_ids:
            self._await_acks(ack_ids)
        return WriteResult(bytes_written=sent, deliveries=len(bodies))

    def _post_events(self, wire: bytes) -> HecAnswer:
        headers = dict(self._auth)
        if self._destination.gzip and wire:
            headers["Content-Encoding"] = "gzip"
        return self._exchange("POST", self._url(EVENT_PATH), wire, headers)

    def _exchange(
        self, method: str, url: str, content: bytes | None, headers: Mapping[str, str]
    ) -> HecAnswer:
        """One request; HEC's answer when accepted, else raises (:func:`classify_answer`)."""
        response = self._http.send(method, url, headers=headers, content=content)
        answer = HecAnswer.parse(response.content)
        error = classify_answer(
            response.status_code, response.headers, answer, self._clock(), target=self._target
        )
        if error is not None:
            raise error
        return answer

    def _ack_id(self, answer: HecAnswer) -> int:
        if answer.ack_id is None:
            raise PermanentError(
                f"{self._target} accepted the events but gave no ackId: the token has indexer "
                "acknowledgement off; turn it on for the token, or set the destination's ack "
                "to false",
                cause="invalid_config",
            )
        return answer.ack_id

    def _await_acks(self, ack_ids: list[int]) -> None:
        """Poll ``/services/collector/ack`` until every id is confirmed. Raises
        :class:`TransientError` (cause ``timeout``) after ``ack_timeout_s``, or the error of a
        failed poll."""
        timeout = self._destination.ack_timeout_s
        deadline = self._monotonic() + timeout
        pending = set(ack_ids)
        wait = ACK_POLL_FIRST_S
        while True:
            body = orjson.dumps({"acks": sorted(pending)})
            answer = self._exchange("POST", self._url(ACK_PATH), body, self._auth)
            pending -= {int(k) for k, ok in (answer.acks or {}).items() if ok and k.isdigit()}
            if not pending:
                return
            left = deadline - self._monotonic()
            if left <= 0:
                raise TransientError(
                    f"{self._target} did not confirm that {len(pending)} of {len(ack_ids)} "
                    f"requests were indexed within {timeout:g} s (indexer acknowledgement); "
                    "the batch will be sent again. If this persists, check the indexers or "
                    "raise the destination's ack_timeout_s",
                    cause="timeout",
                )
            self._sleep(min(wait, left))
            wait = min(wait * 2, ACK_POLL_MAX_S)

    def probe(self) -> CheckResult:
        """Check the HEC, each call once: ``GET /services/collector/health`` with the token
        (HEC health; recent Splunk versions check the token too), an empty ``POST`` of events
        (Splunk checks the token and answers "No data": nothing is indexed), with ``ack`` an
        empty acknowledgement query, and only when the destination names an ``index`` one
        event marked ``auditstream_check`` into it (Splunk says whether a token may write to
        an index only for an event that names it). Never raises for a destination problem:
        the result names the cause (``bad_credentials``, ``index_missing``, ``unreachable``,
        ``tls_failure``, ``timeout``, ``unavailable``, ``invalid_config``, ``invalid_url``)."""
        steps: list[str] = []
        for step in (self._check_health, self._check_token, self._check_ack, self._check_index):
            failed = step(steps)
            if failed is not None:
                return failed
        index = f" and index {self._destination.index}" if self._destination.index else ""
        return CheckResult(
            True,
            None,
            f"destination {self._destination.id} works: {self._target} is healthy and accepts "
            f"the token{index}",
            steps,
        )

    def _check_health(self, steps: list[str]) -> CheckResult | None:
        doing = f"asking {self._target} for its health"
        try:
            response = self._http.send("GET", self._url(HEALTH_PATH), headers=self._auth)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        status = response.status_code
        if status in (401, 403, 404):  # a proxy without the health endpoint: the next steps tell
            steps.append(f"{doing}: answered {status}, no HEC health here (noted)")
            return None
        answer = HecAnswer.parse(response.content)
        error = classify_answer(
            status, response.headers, answer, self._clock(), target=self._target
        )
        if error is not None:
            return CheckResult.failure(error, doing, steps)
        steps.append(f"{doing}: healthy")
        return None

    def _check_token(self, steps: list[str]) -> CheckResult | None:
        doing = f"posting no events to {self._target} (token check)"
        try:
            response = self._http.send(
                "POST", self._url(EVENT_PATH), headers=self._auth, content=b""
            )
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        answer = HecAnswer.parse(response.content)
        if answer.code == 5 or 200 <= response.status_code < 300:
            steps.append(f"{doing}: token accepted")
            return None
        error = classify_answer(
            response.status_code, response.headers, answer, self._clock(), target=self._target
        )
        assert error is not None
        return CheckResult.failure(error, doing, steps)

    def _check_ack(self, steps: list[str]) -> CheckResult | None:
        if not self._destination.ack:
            return None
        doing = f"querying acknowledgements at {self._target}"
        try:
            self._exchange("POST", self._url(ACK_PATH), b'{"acks":[]}', self._auth)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        steps.append(f"{doing}: indexer acknowledgement is on for the token")
        return None

    def _check_index(self, steps: list[str]) -> CheckResult | None:
        index = self._destination.index
        if index is None:
            return None
        doing = f"posting one check event to index {index} at {self._target}"
        check = {CHECK_FIELD: True, "destination_id": self._destination.id}
        body = envelope(
            {"occurred_at": datetime.fromtimestamp(self._clock(), UTC)},
            orjson.dumps(check),
            self._fields,
        )
        try:
            self._post_events(gzip_body(body) if self._destination.gzip else body)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        steps.append(f"{doing}: accepted (one event marked {CHECK_FIELD})")
        return None

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (a ``TransientError``). Never raises."""
        return is_retryable(exc)

    def close(self) -> None:
        """Close the client the sink built (a given client is left open). Does not raise."""
        self._http.close()
