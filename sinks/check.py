"""Destination check: does a destination accept what its sink will send, and if not, why?

For an object store (S3, GCS, Azure Blob, a local directory) the check writes a small JSON
object ``{prefix}/_auditstream_check/{uuid}.json`` with the destination's own sink, writes it
again (a replayed batch overwrites its object, which GCS allows only with delete permission),
reads it back and deletes it. For a webhook it POSTs a signed empty batch (``[]``, or an empty
body for NDJSON) marked with ``X-Auditstream-Check: 1`` and a check-only ``Idempotency-Key``.

A failure is reported with exactly one cause, the sink's own (see :func:`check_cause`):
``bucket_missing``, ``access_denied``, ``bad_credentials``, ``region_mismatch``,
``unreachable``, ``tls_failure`` or ``timeout`` for the common ones, and the message says how
to fix it. Delivery needs no read or delete access, so a refused read-back or delete is a
note in ``steps``, not a failure. Each remote call is made once: a check answers fast rather than
retrying.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

from auditstream.config.destinations import Destination, WebhookDestination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.signature import IDEMPOTENCY_HEADER
from auditstream.sinks.webhook import WebhookSink, classify_exception, classify_response

CHECK_HEADER = "X-Auditstream-Check"
CHECK_FOLDER = "_auditstream_check"
CHECK_CONTENT_TYPE = "application/json"

CAUSES = frozenset(
    {
        "bucket_missing",
        "access_denied",
        "bad_credentials",
        "region_mismatch",
        "unreachable",
        "tls_failure",
        "timeout",
    }
)
"""The causes a check names for the failures met most; any other is the sink's own code
(``throttled``, ``http_404``, ``invalid_config``, ...)."""

_WEBHOOK_CAUSES = {"http_401": "bad_credentials", "http_403": "access_denied"}


@dataclass
class CheckResult:
    """``ok`` and, when not, the one ``cause``; ``message`` says what was found and how to fix
    it; ``steps`` lists what the check did, notes included."""

    ok: bool
    cause: str | None
    message: str
    steps: list[str] = field(default_factory=list)


@runtime_checkable
class _Probeable(Protocol):
    """What the check needs of an object-store sink."""

    prefix: str

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None: ...

    def _get(self, key: str) -> bytes: ...

    def _delete(self, key: str) -> None: ...


def check_key(prefix: str, check_id: str) -> str:
    """``{prefix}/_auditstream_check/{check_id}.json`` (no leading slash without a prefix).
    The folder sits beside the ``account=`` folders, so no reader of events picks it up."""
    parts = [p for p in (prefix.strip("/"), CHECK_FOLDER) if p]
    return "/".join([*parts, f"{check_id}.json"])


def check_cause(error: DeliveryError) -> str:
    """The one cause a check reports for ``error``: the sink's cause, with a webhook's 401
    and 403 named as the credential problems they are."""
    return _WEBHOOK_CAUSES.get(error.cause, error.cause)


def _failed(error: DeliveryError, doing: str, steps: list[str]) -> CheckResult:
    cause = check_cause(error)
    steps.append(f"{doing}: failed ({cause})")
    return CheckResult(False, cause, f"{doing} failed: {error}", steps)


def check_destination(destination: Destination, *, local_root: Path | None = None) -> CheckResult:
    """Check ``destination`` end to end with its own sink (``local_root`` anchors a relative
    local path). Never raises for a destination problem: the result says what it is."""
    steps: list[str] = []
    try:
        sink = build_sink(destination, local_root=local_root)
    except ConfigError as exc:
        return CheckResult(False, "invalid_config", str(exc), ["read the settings: invalid"])
    steps.append(f"built the {sink.type} sink")
    try:
        if isinstance(sink, WebhookSink):
            assert isinstance(destination, WebhookDestination)
            return _check_webhook(sink, destination, steps)
        if isinstance(sink, ObjectStoreSink) and isinstance(sink, _Probeable):
            return _check_object_store(sink, destination.id, steps)
        return CheckResult(False, "unsupported", f"no check for {sink.type} destinations", steps)
    finally:
        sink.close()


def _check_object_store(sink: _Probeable, destination_id: str, steps: list[str]) -> CheckResult:
    check_id = str(uuid.uuid4())
    key = check_key(sink.prefix, check_id)

    def body(attempt: int) -> bytes:
        document = {
            "auditstream_check": check_id,
            "destination": destination_id,
            "attempt": attempt,
            "written_at": datetime.now(UTC).isoformat(),
        }
        return json.dumps(document).encode()

    first = body(1)
    try:
        sink._put(key, first, content_type=CHECK_CONTENT_TYPE, content_encoding=None)
    except DeliveryError as exc:
        return _failed(exc, f"writing {key}", steps)
    steps.append(f"wrote {key} ({len(first)} bytes)")
    # A replayed batch rewrites its object (exactly-once by key), and some stores need more
    # than write access for that (GCS: storage.objects.delete).
    second = body(2)
    try:
        sink._put(key, second, content_type=CHECK_CONTENT_TYPE, content_encoding=None)
    except DeliveryError as exc:
        return _failed(exc, f"overwriting {key}, as a replayed batch does,", steps)
    steps.append(f"overwrote {key}")

    done = ["written", "overwritten"]
    try:
        stored = sink._get(key)
    except DeliveryError as exc:
        if check_cause(exc) != "access_denied":
            return _failed(exc, f"reading {key} back", steps)
        done.append("not read back (refused; delivery does not read)")
        steps.append(f"note: reading {key} back was refused ({exc})")
    else:
        if stored != second:
            steps.append(f"read {key} back: {len(stored)} bytes, not the {len(second)} written")
            return CheckResult(
                False,
                "read_mismatch",
                f"{key} read back differs from what was written: check for a proxy or a "
                "bucket policy that rewrites objects",
                steps,
            )
        steps.append(f"read {key} back: the same {len(second)} bytes")
        done.append("read back")

    try:
        sink._delete(key)
    except DeliveryError as exc:
        done.append(f"not deleted ({check_cause(exc)}: remove {key} by hand)")
        steps.append(f"note: deleting {key} was refused ({exc}); delivery does not delete")
    else:
        steps.append(f"deleted {key}")
        done.append("deleted")
    return CheckResult(
        True,
        None,
        f"destination {destination_id} works: a check object was {', '.join(done)}",
        steps,
    )


def _check_webhook(
    sink: WebhookSink, destination: WebhookDestination, steps: list[str]
) -> CheckResult:
    body = b"[]" if destination.body == "json_array" else b""
    probe = Batch(
        destination_id=destination.id,
        account_id="",
        topic="",
        partition=0,
        records=[Record("", 0, 0, None, b"")],
    )
    headers = sink.build_headers(probe, body, int(time.time()))
    # Its own key: a receiver that drops replays must not take the first real batch
    # (partition 0, offset 0) for a replay of the check.
    headers[IDEMPOTENCY_HEADER] = f"{destination.id}:check:{uuid.uuid4()}"
    headers[CHECK_HEADER] = "1"
    target = sink._target
    doing = f"posting a signed empty batch to {target}"
    try:
        response = sink._client.post(destination.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return _failed(classify_exception(exc, target=target), doing, steps)
    except httpx.InvalidURL:
        invalid = PermanentError(
            f"destination {destination.id}: the URL is not valid: check it", cause="invalid_url"
        )
        return _failed(invalid, doing, steps)
    error = classify_response(response.status_code, response.headers, time.time(), target=target)
    if error is not None:
        return _failed(error, doing, steps)
    steps.append(f"{doing}: answered {response.status_code}")
    return CheckResult(
        True,
        None,
        f"destination {destination.id} works: {target} accepted a signed empty batch "
        f"({response.status_code})",
        steps,
    )
