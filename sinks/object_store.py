"""The object-store template: batch → key → bytes → ``_put``. S3, GCS, Azure Blob and the local
directory differ only in ``_put`` (and in how they map their errors). The format gives each
object its ``Content-Type`` and ``Content-Encoding``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime

from auditstream.sinks.batch import Batch
from auditstream.sinks.formats import Format, format_for
from auditstream.sinks.object_key import object_key
from auditstream.sinks.retry import is_retryable


class ObjectStoreSink(ABC):
    """Writes each batch as one object whose key is deterministic (see ``sinks.object_key``)."""

    type = "object_store"

    def __init__(self, *, prefix: str, fmt: str, compression: str) -> None:
        self.prefix = prefix
        self.format: Format = format_for(fmt, compression)

    def key_for(self, batch: Batch) -> str:
        when = batch.first_recorded_at() or datetime.fromtimestamp(
            batch.records[0].timestamp_ms / 1000, tz=UTC
        )
        return object_key(
            prefix=self.prefix,
            account_id=batch.account_id,
            record_date=when,
            partition=batch.partition,
            first_offset=batch.first_offset,
            extension=self.format.extension,
        )

    def write(self, batch: Batch) -> None:
        """Serialize and store ``batch``; raises :class:`sinks.errors.DeliveryError`."""
        data = self.format.serialize(batch.events)
        self._put(
            self.key_for(batch),
            data,
            content_type=self.format.content_type,
            content_encoding=self.format.content_encoding,
        )
        self.last_written_bytes = len(data)

    last_written_bytes = 0

    @abstractmethod
    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        """Store ``data`` at ``key`` with the given ``Content-Type`` and ``Content-Encoding``
        (``None``: no encoding), replacing any object there. Raises ``DeliveryError``."""

    def is_retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc)

    def close(self) -> None:
        return None
