"""A real Azure Blob Storage endpoint for tests and benchmarks: Azurite on 127.0.0.1.

Azurite (the Blob service only) is the npm package pinned in ``deploy/local/azurite``;
``deploy/local/emulators.sh install`` puts it into ``deploy/local/azurite/node_modules``.
It runs under Node.js with its data in the work directory (``--location``), so containers
and blobs survive :meth:`Azurite.restart` (``stop()`` sends TERM, which lets Azurite save
its metadata; a KILL after the stop timeout may lose the latest changes).

Azurite checks Shared Key signatures: a request signed with another account key is
rejected with 403 ``AuthorizationFailure``. The account is the well-known development
account ``devstoreaccount1`` with its published key. ``--skipApiVersionCheck`` lets newer
SDKs through, ``--loose`` ignores headers Azurite does not support.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Self

from azure.storage.blob import BlobServiceClient

from .local_process import HOST, LocalServer, http_status

INSTALL_HINT = "run deploy/local/emulators.sh install"
REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_DIR = REPO_ROOT / "deploy" / "local" / "azurite"
AZURITE_BLOB_MAIN = AZURITE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

# The well-known Azurite / storage emulator development account; the key is public.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_command() -> list[str]:
    """``node <azurite blob main.js>``; raises ``RuntimeError`` if either is missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(
            f"Node.js (node) is needed to run Azurite; install it, then {INSTALL_HINT}"
        )
    if not AZURITE_BLOB_MAIN.is_file():
        raise RuntimeError(
            f"Azurite is not installed ({AZURITE_BLOB_MAIN} is missing); {INSTALL_HINT}"
        )
    return [node, str(AZURITE_BLOB_MAIN)]


class Azurite(LocalServer):
    """A running Azurite Blob service listening on 127.0.0.1 only.

    Use ``Azurite.start(workdir)`` (or ``with Azurite.start(workdir) as azurite:``), then
    ``azurite.client()`` or any client built from ``azurite.connection_string`` (or from
    ``account_url`` with ``account_name`` / ``account_key``). Containers and blobs persist
    across :meth:`restart` (they are stored in ``workdir``; it comes back on the same port).
    """

    name = "Azurite"
    log_name = "azurite.log"
    port_in_use_text = "eaddrinuse"
    install_hint = INSTALL_HINT
    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, workdir: Path, port: int) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        super().__init__(workdir, port)
        self.account_url = f"http://{HOST}:{port}/{ACCOUNT_NAME}"
        self.connection_string = self.connection_string_for(ACCOUNT_KEY)

    @classmethod
    def start(cls, workdir: Path) -> Self:
        """Start Azurite's Blob service on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds Azurite's data and the log. Raises
        ``RuntimeError`` with the tail of the log if it does not come up (or with a hint
        to run ``deploy/local/emulators.sh install`` if it is not installed); no server
        process is left running in that case.
        """
        return cls._start_on_free_port(workdir)

    def connection_string_for(self, account_key: str) -> str:
        """A connection string for this server that signs with ``account_key``."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={account_key};BlobEndpoint={self.account_url};"
        )

    def client(self, *, account_key: str | None = None, **kwargs: Any) -> BlobServiceClient:
        """A ``BlobServiceClient`` from the connection string.

        ``account_key`` signs with another key (to test rejected credentials); ``kwargs``
        go to the client (for example ``max_single_put_size``, ``max_block_size``).
        """
        key = account_key if account_key is not None else ACCOUNT_KEY
        return BlobServiceClient.from_connection_string(self.connection_string_for(key), **kwargs)

    def _command(self) -> list[str]:
        return [
            *azurite_command(),
            "--blobHost", HOST,
            "--blobPort", str(self.port),
            "--location", str(self.workdir),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
            "--silent",
        ]  # fmt: skip

    def _ready(self) -> bool:
        # Any HTTP answer means the service listens; an unsigned request gets 403.
        return http_status(self.port, f"/{ACCOUNT_NAME}?comp=list") is not None
