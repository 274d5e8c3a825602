"""Open the audit store a URL names: ``sqlite:///path`` or a plain path (SQLite), or
``postgresql://...`` (PostgreSQL, whose driver is imported only when asked for)."""

from __future__ import annotations

import os
from typing import Protocol
from urllib.parse import unquote, urlsplit

from auditstream.store.base import AuditStore
from auditstream.store.errors import StoreUnavailable
from auditstream.store.sqlite_store import SqliteStore

STORE_ENV = "AUDITSTREAM_STORE"
DEFAULT_STORE = "sqlite:///auditstream-audit.db"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


class ManagedStore(AuditStore, Protocol):
    """A store that also creates or upgrades its own tables."""

    def migrate(self) -> object:
        """Create or upgrade the tables (idempotent); raises ``StoreError`` on failure."""
        ...


def default_store_url() -> str:
    """``$AUDITSTREAM_STORE``, else a SQLite file in the working folder."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite store URL or plain path; ``None`` for any other URL.
    ``sqlite:///rel.db`` is relative, ``sqlite:////abs.db`` absolute (SQLAlchemy's spelling)."""
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        if not rest.startswith("///"):
            raise StoreUnavailable(
                f"{url!r} is not a SQLite store URL: write sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        return unquote(rest[3:])
    if "://" in url:
        return None
    return url


def open_store(url: str | None = None) -> ManagedStore:
    """The store at ``url`` (default: ``default_store_url()``). Raises ``StoreUnavailable``
    for a URL of no known kind or a store that cannot be opened."""
    url = url if url is not None else default_store_url()
    if not url.strip():
        raise StoreUnavailable(f"no audit store given: pass --store or set {STORE_ENV}")
    path = sqlite_path(url)
    if path is not None:
        if not path:
            raise StoreUnavailable(f"{url!r} names no file: write sqlite:///path/to/audit.db")
        return SqliteStore(path)
    scheme = urlsplit(url).scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        from auditstream.store.postgres_store import (  # type: ignore[import-not-found,unused-ignore]
            PostgresStore,
        )

        store: ManagedStore = PostgresStore(url)
        return store
    raise StoreUnavailable(
        f"unknown audit store URL scheme {scheme!r}: use sqlite:///path.db, a file path, or "
        "postgresql://user@host/database"
    )
