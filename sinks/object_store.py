"""The object-store template: batch → key → bytes → ``_put``. S3, GCS, Azure Blob and the local
directory differ only in ``_put``, ``_get`` and ``_delete`` (and in how they map their errors).
The format gives each object its ``Content-Type`` and ``Content-Encoding``.

The probe of the destination check goes through the same three calls: it writes a small JSON
object ``{prefix}/_auditstream_check/{uuid}.json``, writes it again (a replayed batch
overwrites its object, which GCS allows only with delete permission), reads it back and deletes
it. Delivery needs no read or delete access, so a refused read-back or delete is a note in
``steps``, not a failure.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime

from auditstream.sinks.base import CheckResult, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError
from auditstream.sinks.formats import Format, format_for
from auditstream.sinks.object_key import object_key
from auditstream.sinks.retry import is_retryable

CHECK_FOLDER = "_auditstream_check"
CHECK_CONTENT_TYPE = "application/json"


def check_key(prefix: str, check_id: str) -> str:
    """``{prefix}/_auditstream_check/{check_id}.json`` (no leading slash without a prefix).
    The folder sits beside the ``account=`` folders, so no reader of events picks it up."""
    parts = [p for p in (prefix.strip("/"), CHECK_FOLDER) if p]
    return "/".join([*parts, f"{check_id}.json"])


class ObjectStoreSink(ABC):
    """Writes each batch as one object whose key is deterministic (see ``sinks.object_key``)."""

    type = "object_store"

    def __init__(
        self,
        *,
        destination_id: str,
        prefix: str,
        fmt: str,
        compression: str,
        schema: str = "native",
    ) -> None:
        self.destination_id = destination_id
        self.prefix = prefix
        self.format: Format = format_for(fmt, compression, schema)
        self.schema = schema

    def key_for(self, batch: Batch, first_recorded_at: datetime | None = None) -> str:
        """The object key of ``batch``; ``first_recorded_at`` when its events are not
        decoded (default: the first event's)."""
        when = (
            first_recorded_at
            or batch.first_recorded_at()
            or datetime.fromtimestamp(batch.records[0].timestamp_ms / 1000, tz=UTC)
        )
        return object_key(
            prefix=self.prefix,
            account_id=batch.account_id,
            record_date=when,
            partition=batch.partition,
            first_offset=batch.first_offset,
            extension=self.format.extension,
        )

    def write(self, batch: Batch) -> WriteResult:
        """Serialize and store ``batch`` as one object; raises :class:`DeliveryError`."""
        data = self.format.serialize(batch.events, batch.documents_for(self.schema))
        self._put(
            self.key_for(batch),
            data,
            content_type=self.format.content_type,
            content_encoding=self.format.content_encoding,
        )
        return WriteResult(bytes_written=len(data), deliveries=1)

    def write_encoded(self, batch: Batch) -> WriteResult | None:
        """Store ``batch`` from its records as they are, without decoding them, when the
        format can (Avro containers framed from the records' bodies); None when it cannot,
        nothing written (the caller decodes the batch and calls :meth:`write`). Raises
        :class:`DeliveryError` as :meth:`write` does. Only for a batch with no field
        redaction: the bodies are written unchanged."""
        encode = getattr(self.format, "encode_records", None)
        framed = encode(batch.records) if encode is not None else None
        if framed is None:
            return None
        self._put(
            self.key_for(batch, framed.first_recorded_at),
            framed.data,
            content_type=self.format.content_type,
            content_encoding=self.format.content_encoding,
        )
        return WriteResult(bytes_written=len(framed.data), deliveries=1)

    @abstractmethod
    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        """Store ``data`` at ``key`` with the given ``Content-Type`` and ``Content-Encoding``
        (``None``: no encoding), replacing any object there. Raises ``DeliveryError``."""

    @abstractmethod
    def _get(self, key: str) -> bytes:
        """The bytes stored at ``key``, exactly as stored (no encoding undone). Raises
        ``DeliveryError`` (cause ``object_missing`` when there is no object)."""

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Delete the object at ``key``. Raises ``DeliveryError``."""

    def probe(self) -> CheckResult:
        """Write, overwrite, read back and delete a check object, each call made once. Never
        raises a ``DeliveryError``: the result names the first refusal that delivery meets."""
        steps: list[str] = []
        check_id = str(uuid.uuid4())
        key = check_key(self.prefix, check_id)

        def body(attempt: int) -> bytes:
            document = {
                "auditstream_check": check_id,
                "destination": self.destination_id,
                "attempt": attempt,
                "written_at": datetime.now(UTC).isoformat(),
            }
            return json.dumps(document).encode()

        first = body(1)
        try:
            self._put(key, first, content_type=CHECK_CONTENT_TYPE, content_encoding=None)
        except DeliveryError as exc:
            return CheckResult.failure(exc, f"writing {key}", steps)
        steps.append(f"wrote {key} ({len(first)} bytes)")
        # A replayed batch rewrites its object (exactly-once by key), and some stores need more
        # than write access for that (GCS: storage.objects.delete).
        second = body(2)
        try:
            self._put(key, second, content_type=CHECK_CONTENT_TYPE, content_encoding=None)
        except DeliveryError as exc:
            return CheckResult.failure(exc, f"overwriting {key}, as a replayed batch does,", steps)
        steps.append(f"overwrote {key}")

        done = ["written", "overwritten"]
        try:
            stored = self._get(key)
        except DeliveryError as exc:
            if exc.cause != "access_denied":
                return CheckResult.failure(exc, f"reading {key} back", steps)
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
            self._delete(key)
        except DeliveryError as exc:
            done.append(f"not deleted ({exc.cause}: remove {key} by hand)")
            steps.append(f"note: deleting {key} was refused ({exc}); delivery does not delete")
        else:
            steps.append(f"deleted {key}")
            done.append("deleted")
        return CheckResult(
            True,
            None,
            f"destination {self.destination_id} works: a check object was {', '.join(done)}",
            steps,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (a ``TransientError``). Never raises."""
        return is_retryable(exc)

    def close(self) -> None:
        """Nothing to release here; stores with clients close them. Does not raise."""
        return None
