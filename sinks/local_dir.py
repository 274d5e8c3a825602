"""The local-directory sink: objects as files, same key layout as the object stores."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from auditstream.config.destinations import LocalDestination
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.object_store import ObjectStoreSink

_TRANSIENT = {errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO}


class LocalDirectorySink(ObjectStoreSink):
    type = "local"

    def __init__(self, destination: LocalDestination, root: Path | None = None) -> None:
        super().__init__(
            destination_id=destination.id,
            prefix=destination.prefix,
            fmt=destination.format,
            compression=destination.compression,
        )
        path = Path(destination.path)
        self.root = path if path.is_absolute() or root is None else root / path

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        # A file has no Content-Type or Content-Encoding: its extension says both.
        del content_type, content_encoding
        target = self.root / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half an object; a replay replaces it whole.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise _os_error(exc, f"cannot write {target}") from exc

    def _get(self, key: str) -> bytes:
        """The bytes stored at ``key`` (used by the destination check)."""
        target = self.root / key
        try:
            return target.read_bytes()
        except FileNotFoundError as exc:
            raise PermanentError(f"{target} does not exist", cause="object_missing") from exc
        except OSError as exc:
            raise _os_error(exc, f"cannot read {target}") from exc

    def _delete(self, key: str) -> None:
        """Remove the file at ``key`` (used by the destination check); a missing file is fine."""
        target = self.root / key
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise _os_error(exc, f"cannot delete {target}") from exc


def _os_error(exc: OSError, message: str) -> TransientError | PermanentError:
    message = f"{message}: {exc.strerror}"
    if exc.errno in _TRANSIENT:
        return TransientError(message, cause="io_error")
    cause = "access_denied" if exc.errno in (errno.EACCES, errno.EPERM) else "io_error"
    return PermanentError(message + " (check the destination path)", cause=cause)
