"""Datadog Logs sink: a batch POSTed to the v2 logs intake of the destination's Datadog site.

Each event becomes one log: Datadog's reserved attributes (``ddsource``, ``service``,
``hostname``, ``ddtags`` with ``account_id`` and ``category``, ``message``, ``timestamp`` from
``occurred_at`` in milliseconds) followed by the event's own fields as our JSON renders them
(``@actor.email``, ``@outcome.status``, ... in Datadog). A request body is a JSON array of
logs, gzip-compressed unless turned off, within the intake's limits (:data:`MAX_ENTRIES` logs
and :data:`MAX_PAYLOAD_BYTES` uncompressed per request): a batch takes as many requests as
it needs.

Nothing is dropped silently:

- a log over :data:`MAX_ENTRY_BYTES` (Datadog would cut it anywhere) is replaced by a
  truncated one: the reserved attributes, the event's ids, ``auditstream.truncated: true``,
  its original size, and as ``message`` as much of the event's JSON as fits;
- an event that occurred more than :data:`MAX_AGE_S` ago (Datadog does not index a log whose
  timestamp is older) is sent without ``timestamp``, so Datadog dates it when it arrives; it
  keeps its ``occurred_at`` and carries ``auditstream.late: true``.

Both are counted and named in the write result and logged.

Delivery is at-least-once: the intake has no idempotency key. A batch counts as delivered
only when every one of its requests was accepted; when one fails, the whole batch is sent
again, so Datadog may hold some of its logs twice (dedup on ``@event_id``).

Building is pure (:func:`log_entry`, :func:`payloads`); answers are mapped onto the error
tree by :func:`classify_answer`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import DATADOG_SITES, DatadogLogsDestination
from auditstream.sinks.base import NOTHING_WRITTEN, CheckResult, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError
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
from auditstream.sinks.retry import is_retryable
from auditstream.sinks.shapes import shape

log = logging.getLogger(__name__)

INTAKE_PATH = "/api/v2/logs"
VALIDATE_PATH = "/api/v1/validate"
API_KEY_HEADER = "DD-API-KEY"

MAX_ENTRIES = 1000
"""Logs per request at most (the intake's array limit)."""
MAX_PAYLOAD_BYTES = 5_000_000
"""Uncompressed bytes per request at most (the intake's 5 MB)."""
MAX_ENTRY_BYTES = 1_000_000
"""Bytes per log at most (the intake's 1 MB); a larger one is truncated by the sink."""
MAX_AGE_S = 18 * 3600
"""How old a log's timestamp may be for Datadog to index it (18 hours)."""

CHECK_TAG = "auditstream_check:true"
CHECK_MESSAGE = "auditstream destination check"
MARKER = "auditstream"
"""The attribute holding the sink's notes on a log: ``truncated``, ``original_bytes``,
``late``, ``check``."""

_TAG_SEPARATORS = re.compile(r"[,\s]")
_IDENTITY = ("event_id", "account_id", "category", "activity")
_NAMED_IN_LOGS = 10
_SITE_LOOKUP_TIMEOUT_S = 5.0

_REFUSALS: Mapping[int, Refusal] = {
    400: Refusal(
        "invalid_request",
        "the intake found the payload malformed; check the sink workers' logs",
    ),
    401: Refusal("bad_credentials", "no API key was accepted: set the destination's api_key"),
    403: Refusal(
        "bad_credentials",
        "the API key was refused: check api_key, and that site is the Datadog site of the "
        "key's organization (a key works on its own site only)",
    ),
    404: Refusal(
        "invalid_url",
        "no logs intake at this address: check the destination's endpoint (a proxy's base URL)",
    ),
    413: Refusal(
        "http_413",
        "the payload is larger than the intake accepts: check any proxy in between",
    ),
}


# -- where requests go -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteUrls:
    """The origins of one Datadog site: its logs intake and its API (key validation)."""

    intake: str
    api: str


def site_urls(site: str) -> SiteUrls:
    """Datadog's own origins for ``site``, e.g. ``https://http-intake.logs.datadoghq.eu``."""
    return SiteUrls(intake=f"https://http-intake.logs.{site}", api=f"https://api.{site}")


def destination_urls(
    destination: DatadogLogsDestination, urls_of_site: Callable[[str], SiteUrls] = site_urls
) -> SiteUrls:
    """Where ``destination``'s requests go: its ``endpoint`` for both when set, else its
    site's origins."""
    if destination.endpoint is not None:
        return SiteUrls(intake=destination.endpoint, api=destination.endpoint)
    return urls_of_site(destination.site)


# -- building logs (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One log as sent, and what the sink did to it."""

    body: bytes
    event_id: str
    truncated: bool = False
    late: bool = False


@dataclass(frozen=True, slots=True)
class LogsWriteResult(WriteResult):
    """A write's result with the events the sink changed to deliver them (see the module
    docstring): ids of truncated logs and of events sent without their old timestamp."""

    truncated_event_ids: tuple[str, ...] = ()
    late_event_ids: tuple[str, ...] = ()


def epoch_millis(value: object) -> int | None:
    """``value`` (a datetime; naive read as UTC) in milliseconds since the epoch, else None."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _tag_value(value: object) -> str:
    """A tag value: no comma (the separator) nor whitespace, 200 characters at most."""
    return _TAG_SEPARATORS.sub("_", str(value))[:200]


def ddtags(event: Mapping[str, Any], extra: str) -> str:
    """``account_id:<id>,category:<category>`` and the destination's ``extra`` tags."""
    tags = [
        f"account_id:{_tag_value(event.get('account_id', ''))}",
        f"category:{_tag_value(event.get('category', ''))}",
    ]
    return ",".join([*tags, extra] if extra else tags)


def summary(event: Mapping[str, Any]) -> str:
    """The log's ``message``: ``<activity> (<category>): <outcome>``, e.g.
    ``user_login (account): success`` (no personal data: that is in the attributes)."""
    text = f"{event.get('activity', 'activity')} ({event.get('category', '')})"
    outcome = event.get("outcome")
    status = outcome.get("status") if isinstance(outcome, Mapping) else None
    return f"{text}: {status}" if status else text


def _splice(head: Mapping[str, Any], document: bytes) -> bytes:
    """One JSON object: ``head``'s members, then ``document``'s (an object)."""
    front = orjson.dumps(head)
    if document == b"{}":
        return front
    return front[:-1] + b"," + document[1:]


def _fitting_text(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose JSON string (quotes included) takes at most
    ``budget`` bytes (a binary search: escapes make the size of a prefix uneven)."""
    fits, over = 0, len(text) + 1
    while over - fits > 1:
        middle = (fits + over) // 2
        if len(orjson.dumps(text[:middle])) <= budget:
            fits = middle
        else:
            over = middle
    return text[:fits]


def truncated_entry(
    head: Mapping[str, Any], event: Mapping[str, Any], document: bytes, original: int, limit: int
) -> bytes:
    """A log of at most ``limit`` bytes for an event whose log took ``original`` bytes:
    ``head`` (the reserved attributes), the event's ids, the marker ``truncated`` with the
    original size, and as ``message`` the start of the event's JSON."""
    marker = {**head.get(MARKER, {}), "truncated": True, "original_bytes": original}
    base = {**head, MARKER: marker, "message": ""}
    base.update({k: str(event[k]) for k in _IDENTITY if isinstance(event.get(k), str | int)})
    if "event_id" in event:
        base["event_id"] = str(event["event_id"])
    if len(orjson.dumps(base)) > limit // 2:  # pathological ids: keep only what must stay
        base = {k: v for k, v in base.items() if k not in _IDENTITY or k == "event_id"}
    budget = limit - len(orjson.dumps(base)) + 2  # the empty message's quotes
    base["message"] = _fitting_text(document.decode("utf-8", "replace"), budget)
    return orjson.dumps(base)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What every log of a destination carries."""

    ddsource: str
    service: str
    hostname: str | None
    tags: str
    summary: bool = True
    """Whether ``message`` is our one-line summary; not when the event shape's document, spliced
    into the log, has a ``message`` of its own (ECS): a log holds each attribute once."""

    @classmethod
    def of(cls, destination: DatadogLogsDestination) -> LogSettings:
        return cls(
            destination.ddsource,
            destination.service,
            destination.hostname,
            destination.tags,
            summary=not shape(destination.schema).spliced_message,
        )

    def head(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The reserved attributes of ``event``'s log (no ``timestamp``)."""
        head: dict[str, Any] = {
            "ddsource": self.ddsource,
            "ddtags": ddtags(event, self.tags),
            "service": self.service,
        }
        if self.summary:
            head["message"] = summary(event)
        if self.hostname:
            head["hostname"] = self.hostname
        return head


def log_entry(
    event: Mapping[str, Any],
    document: bytes,
    settings: LogSettings,
    now: float,
    *,
    limit: int = MAX_ENTRY_BYTES,
) -> Entry:
    """The log of ``event`` (``document``: the event as our JSON) sent at ``now`` (epoch s)."""
    head = settings.head(event)
    millis = epoch_millis(event.get("occurred_at"))
    late = millis is not None and millis < (now - MAX_AGE_S) * 1000
    if late:
        head[MARKER] = {"late": True}
    elif millis is not None:
        head["timestamp"] = millis
    body = _splice(head, document)
    truncated = len(body) > limit
    if truncated:
        body = truncated_entry(head, event, document, len(body), limit)
    return Entry(body, str(event.get("event_id", "")), truncated=truncated, late=late)


def payloads(
    entries: Sequence[Entry],
    *,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[bytes]:
    """The logs, in order, as JSON arrays within the intake's limits."""
    runs = split_runs(
        [len(e.body) for e in entries],
        max_items=max_entries,
        max_bytes=max_bytes,
        separator=1,
        framing=2,
    )
    return [b"[" + b",".join(e.body for e in entries[r.start : r.stop]) + b"]" for r in runs]


def check_log(settings: LogSettings) -> bytes:
    """The destination check's one log, marked by tag and attribute, as a request body."""
    tags = f"{settings.tags},{CHECK_TAG}" if settings.tags else CHECK_TAG
    head: dict[str, Any] = {
        "ddsource": settings.ddsource,
        "ddtags": tags,
        "service": settings.service,
        "message": CHECK_MESSAGE,
        MARKER: {"check": True},
    }
    if settings.hostname:
        head["hostname"] = settings.hostname
    return orjson.dumps([head])


def classify_answer(
    status: int, headers: Mapping[str, str], now: float, *, target: str
) -> DeliveryError | None:
    """The intake's answer as ``None`` (2xx, normally 202) or the error to raise: 400, 401,
    403, 404 and 413 permanent with what to check (a refused key is ``bad_credentials``);
    408, 429 and 5xx transient with the ``Retry-After`` asked for."""
    return classify_status(status, headers, now, target=target, refusals=_REFUSALS)


def _named(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_NAMED_IN_LOGS])
    more = len(ids) - _NAMED_IN_LOGS
    return f"{shown} and {more} more" if more > 0 else shown


# -- the sink --------------------------------------------------------------------------------------


class DatadogLogsSink:
    """Delivers a destination's batches to Datadog Logs.

    ``client`` is used as given (and left open by :meth:`close`); without one the sink builds
    its own (:func:`sinks.http_batch.build_client`). ``clock`` gives the time logs are judged
    late against and answers are read at; ``urls_of_site`` gives a site's origins (tests point
    the sites at local receivers).
    """

    type: str = "datadog_logs"

    def __init__(
        self,
        destination: DatadogLogsDestination,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.time,
        address_policy: AddressPolicy | None = None,
        urls_of_site: Callable[[str], SiteUrls] = site_urls,
    ) -> None:
        self._destination = destination
        self._urls_of_site = urls_of_site
        urls = destination_urls(destination, urls_of_site)
        field = "endpoint" if destination.endpoint else "site"
        self._target = describe_target("Datadog Logs intake", urls.intake, destination.id, field)
        self._api_target = describe_target("Datadog API", urls.api, destination.id, field)
        self._intake_url = join_url(urls.intake, INTAKE_PATH)
        self._validate_url = join_url(urls.api, VALIDATE_PATH)
        self._clock = clock
        owns = client is None
        if client is None:
            client = build_client(
                destination_id=destination.id,
                timeout_s=destination.timeout_s,
                verify_tls=destination.verify_tls,
                ca_file=destination.ca_file,
                address_policy=address_policy,
                target=self._target,
            )
        self._http = HttpExchange(
            client, target=self._target, address_policy=address_policy, owns_client=owns
        )
        self._api = HttpExchange(
            client, target=self._api_target, address_policy=address_policy, owns_client=False
        )
        self._settings = LogSettings.of(destination)
        self._headers = {
            API_KEY_HEADER: destination.api_key.get_secret_value(),
            "Content-Type": "application/json",
        }

    def __repr__(self) -> str:
        return f"DatadogLogsSink(id={self._destination.id!r}, target={self._target!r})"

    def entries(self, batch: Batch) -> list[Entry]:
        """The logs of ``batch``, in order, judged late against the sink's clock now."""
        now = self._clock()
        documents = batch_documents(batch, self._destination.schema)
        nest_as = shape(self._destination.schema).nest_as
        if nest_as is not None:  # the shape's document as one attribute of the log
            opening = b"{" + orjson.dumps(nest_as) + b":"
            documents = [opening + d + b"}" for d in documents]
        return [
            log_entry(event, document, self._settings, now)
            for event, document in zip(batch.events, documents, strict=True)
        ]

    def write(self, batch: Batch) -> WriteResult:
        """POST ``batch`` once, as as many requests as the intake's limits need. A batch
        without events sends nothing. Raises :class:`DeliveryError` (see
        :func:`classify_answer`) when any request fails: nothing then counts as delivered,
        and the batch is sent again whole."""
        if not batch.events:
            return NOTHING_WRITTEN
        entries = self.entries(batch)
        bodies = payloads(entries)
        sent = 0
        for body in bodies:
            wire = gzip_body(body) if self._destination.gzip else body
            self._post(wire)
            sent += len(wire)
        truncated = tuple(e.event_id for e in entries if e.truncated)
        late = tuple(e.event_id for e in entries if e.late)
        self._report(truncated, late)
        return LogsWriteResult(
            bytes_written=sent,
            deliveries=len(bodies),
            truncated_event_ids=truncated,
            late_event_ids=late,
        )

    def _report(self, truncated: Sequence[str], late: Sequence[str]) -> None:
        destination = self._destination.id
        if truncated:
            log.warning(
                "destination %s: %d events over Datadog's 1 MB per log were sent truncated "
                "(marked %s.truncated): %s",
                destination,
                len(truncated),
                MARKER,
                _named(truncated),
            )
        if late:
            log.warning(
                "destination %s: %d events older than Datadog's 18 hours were sent dated at "
                "arrival (marked %s.late; occurred_at kept): %s",
                destination,
                len(late),
                MARKER,
                _named(late),
            )

    def _post(self, wire: bytes) -> int:
        """POST one request body; the intake's 2xx status, else raises."""
        headers = dict(self._headers)
        if self._destination.gzip:
            headers["Content-Encoding"] = "gzip"
        response = self._http.send("POST", self._intake_url, headers=headers, content=wire)
        error = classify_answer(
            response.status_code, response.headers, self._clock(), target=self._target
        )
        if error is not None:
            raise error
        return response.status_code

    def probe(self) -> CheckResult:
        """Check the destination, each call once: ``GET /api/v1/validate`` with the key on the
        site's API (nothing is written; a key refused there is looked up on Datadog's other
        sites, so a key of another site is named ``region_mismatch`` with the site to set, any
        other refusal ``bad_credentials``), then one log marked ``auditstream_check:true``
        (tag) and ``auditstream.check`` (attribute) POSTed to the intake as deliveries are.
        With an ``endpoint`` that has no key validation (404), the check log alone decides.
        Never raises for a destination problem: the result names the cause."""
        steps: list[str] = []
        failed = self._check_key(steps)
        if failed is not None:
            return failed
        doing = f"sending one check log to {self._target}"
        body = check_log(self._settings)
        try:
            status = self._post(gzip_body(body) if self._destination.gzip else body)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        steps.append(f"{doing}: answered {status}")
        return CheckResult(
            True,
            None,
            f"destination {self._destination.id} works: the API key is valid and "
            f"{self._target} accepted a check log ({status})",
            steps,
        )

    def _check_key(self, steps: list[str]) -> CheckResult | None:
        doing = f"validating the API key with {self._api_target}"
        try:
            response = self._api.send("GET", self._validate_url, headers=self._headers)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        status = response.status_code
        if 200 <= status < 300 and json_answer(response.content).get("valid") is True:
            steps.append(f"{doing}: valid")
            return None
        if status == 404 and self._destination.endpoint is not None:
            steps.append(f"{doing}: the endpoint has no key validation (noted)")
            return None
        error = classify_status(
            status, response.headers, self._clock(), target=self._api_target, refusals=_REFUSALS
        )
        if error is None:  # 2xx without "valid": true
            error = classify_status(
                403, {}, self._clock(), target=self._api_target, refusals=_REFUSALS
            )
        assert error is not None
        if status in (401, 403) and self._destination.endpoint is None:
            other = self._site_of_key(steps)
            if other is not None:
                steps.append(f"{doing}: failed (region_mismatch)")
                return CheckResult(
                    False,
                    "region_mismatch",
                    f"{doing} failed: the API key belongs to Datadog site {other}, not "
                    f"{self._destination.site}: set the destination's site to {other}",
                    steps,
                )
        return CheckResult.failure(error, doing, steps)

    def _site_of_key(self, steps: list[str]) -> str | None:
        """The other Datadog site whose API says the key is valid, if any (each asked once,
        Datadog's own hosts only)."""
        for site in DATADOG_SITES:
            if site == self._destination.site:
                continue
            url = join_url(self._urls_of_site(site).api, VALIDATE_PATH)
            try:
                response = self._api.send(
                    "GET", url, headers=self._headers, timeout=_SITE_LOOKUP_TIMEOUT_S
                )
            except DeliveryError:
                continue
            if response.status_code == 200 and json_answer(response.content).get("valid"):
                steps.append(f"asking Datadog's other sites: the key is valid on {site}")
                return site
        steps.append("asking Datadog's other sites: no site knows the key")
        return None

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (a ``TransientError``). Never raises."""
        return is_retryable(exc)

    def close(self) -> None:
        """Close the client the sink built (a given client is left open). Does not raise."""
        self._http.close()
