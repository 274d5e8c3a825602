"""psycopg's exceptions as the store's errors, each saying what to do (pure).

``where`` names the server without its password (``postgresql://user@host:port/db``).
"""

from __future__ import annotations

from psycopg import errors as pg

from auditstream.store.errors import StoreError, StoreUnavailable

MIGRATE_HINT = "run `auditstream store migrate` (PostgresStore.migrate())"


def connect_error(exc: Exception, where: str) -> StoreUnavailable:
    """A failed connection attempt (``psycopg.connect`` or a probe of the pool)."""
    text = _first_line(exc)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return StoreUnavailable(
            f"PostgreSQL at {where} refused the login ({text}): check the user and password "
            "in the store's DSN"
        )
    if "does not exist" in lowered and "database" in lowered:
        return StoreUnavailable(
            f"the database of {where} does not exist ({text}): create it (createdb) or fix the "
            f"database name in the DSN, then {MIGRATE_HINT}"
        )
    if "role" in lowered and "does not exist" in lowered:
        return StoreUnavailable(
            f"PostgreSQL at {where} has no such user ({text}): create the role or fix the DSN"
        )
    if "too many" in lowered and "connection" in lowered:
        return StoreUnavailable(
            f"PostgreSQL at {where} has no free connection slot ({text}): raise "
            "max_connections or lower the store's pool size"
        )
    if "no pg_hba.conf entry" in lowered:
        return StoreUnavailable(
            f"PostgreSQL at {where} does not accept this client ({text}): add a pg_hba.conf "
            "entry for this host and user"
        )
    return StoreUnavailable(
        f"cannot reach PostgreSQL at {where} ({text}): start the server, or fix the host and "
        "port in the store's DSN"
    )


def mapped(exc: Exception, doing: str, where: str) -> StoreError:
    """A failure while ``doing`` something on an open connection."""
    text = _first_line(exc)
    if isinstance(exc, pg.UndefinedTable | pg.UndefinedColumn | pg.UndefinedFunction):
        return StoreUnavailable(
            f"the audit store's tables are missing or out of date in {where} ({text}): "
            f"{MIGRATE_HINT}"
        )
    if isinstance(exc, pg.InsufficientPrivilege):
        return StoreUnavailable(
            f"the store's user may not do this in {where} ({text}): grant it the tables, or "
            "connect as their owner"
        )
    if isinstance(exc, pg.DiskFull | pg.OutOfMemory | pg.InsufficientResources):
        return StoreError(
            f"PostgreSQL at {where} ran out of resources while {doing} ({text}); nothing was "
            "changed. Free disk space or memory on the server and retry"
        )
    if isinstance(exc, pg.LockNotAvailable | pg.DeadlockDetected | pg.SerializationFailure):
        return StoreError(
            f"{doing} waited too long for a lock in {where} ({text}); nothing was changed. Retry"
        )
    if isinstance(exc, pg.QueryCanceled):
        return StoreError(
            f"{doing} took longer than the store's statement timeout in {where} ({text}); "
            "nothing was changed. Narrow the request or retry"
        )
    if isinstance(exc, pg.OperationalError):
        # The connection broke: an uncommitted transaction is rolled back by the server; one
        # broken during COMMIT may have committed, which a retried append finds as duplicates.
        return StoreError(
            f"the connection to PostgreSQL at {where} was lost while {doing} ({text}). Retry "
            "once the server is back: nothing half-done stays, and a retried append stores "
            "each event once"
        )
    return StoreError(f"PostgreSQL at {where} failed while {doing} ({text}); nothing was changed")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
