"""The local-directory sink: objects as files, same key layout as the object stores.

Every file path is resolved (symlinks followed) before it is touched, and must lie inside the
destination's directory, which must lie inside the workers' local root when one is given: a
path, prefix or account id that climbs out (``..``, an absolute path, a symlink to elsewhere)
is refused with cause ``path_outside_root`` and nothing is written.
"""

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
    """Writes each batch as a file below the destination's directory: ``path``, under
    ``root`` (the workers' local root) when it is relative."""

    type = "local"

    def __init__(self, destination: LocalDestination, root: Path | None = None) -> None:
        super().__init__(
            destination_id=destination.id,
            prefix=destination.prefix,
            fmt=destination.format,
            compression=destination.compression,
            schema=destination.schema,
        )
        path = Path(destination.path)
        self.local_root = root
        self.root = path if path.is_absolute() or root is None else root / path

    def _target(self, key: str) -> Path:
        """The file for ``key``, resolved. Raises :class:`PermanentError`: cause
        ``path_outside_root`` when it is not inside the destination's directory or that is not
        inside the local root, ``invalid_path`` when the path cannot be resolved."""
        try:
            base = self.root.resolve()
            target = (self.root / key).resolve()
            top = self.local_root.resolve() if self.local_root is not None else base
        except (OSError, ValueError, RuntimeError) as exc:  # NUL byte, symlink loop, ...
            raise PermanentError(
                f"destination {self.destination_id}: its path cannot be resolved "
                f"({type(exc).__name__}): check the destination's path and prefix",
                cause="invalid_path",
            ) from exc
        if not (base.is_relative_to(top) and target.is_relative_to(base) and target != base):
            raise PermanentError(
                f"destination {self.destination_id}: the file would be outside the "
                "destination's directory or the workers' local root (a .. segment, an absolute "
                "path or a symlink): check the destination's path and prefix",
                cause="path_outside_root",
            )
        return target

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        # A file has no Content-Type or Content-Encoding: its extension says both.
        del content_type, content_encoding
        target = self._target(key)
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
        target = self._target(key)
        try:
            return target.read_bytes()
        except FileNotFoundError as exc:
            raise PermanentError(f"{target} does not exist", cause="object_missing") from exc
        except OSError as exc:
            raise _os_error(exc, f"cannot read {target}") from exc

    def _delete(self, key: str) -> None:
        """Remove the file at ``key`` (used by the destination check); a missing file is fine."""
        target = self._target(key)
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
