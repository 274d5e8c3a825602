"""The local-directory sink: objects as files, same key layout as the object stores."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from config.destinations import LocalDestination
from sinks.errors import PermanentError, TransientError
from sinks.object_store import ObjectStoreSink

_TRANSIENT = {errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO}


class LocalDirectorySink(ObjectStoreSink):
    type = "local"

    def __init__(self, destination: LocalDestination, root: Path | None = None) -> None:
        super().__init__(
            prefix=destination.prefix, fmt=destination.format, compression=destination.compression
        )
        path = Path(destination.path)
        self.root = path if path.is_absolute() or root is None else root / path

    def _put(self, key: str, data: bytes) -> None:
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
            message = f"cannot write {target}: {exc.strerror}"
            if exc.errno in _TRANSIENT:
                raise TransientError(message, cause="io_error") from exc
            cause = "access_denied" if exc.errno in (errno.EACCES, errno.EPERM) else "io_error"
            raise PermanentError(message + " (check the destination path)", cause=cause) from exc
