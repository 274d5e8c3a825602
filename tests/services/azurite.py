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

import http.client
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from azure.storage.blob import BlobServiceClient

from .ports import free_port

HOST = "127.0.0.1"
INSTALL_HINT = "run deploy/local/emulators.sh install"
REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_DIR = REPO_ROOT / "deploy" / "local" / "azurite"
AZURITE_BLOB_MAIN = AZURITE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

# The well-known Azurite / storage emulator development account; the key is public.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 40


def _log_tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"


def _http_status(port: int, path: str) -> int | None:
    """The HTTP status of ``GET path`` on 127.0.0.1:``port``, or ``None`` if nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


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


class _PortInUse(Exception):
    pass


class Azurite:
    """A running Azurite Blob service listening on 127.0.0.1 only.

    Use ``Azurite.start(workdir)`` (or ``with Azurite.start(workdir) as azurite:``), then
    ``azurite.client()`` or any client built from ``azurite.connection_string`` (or from
    ``account_url`` with ``account_name`` / ``account_key``).
    """

    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, workdir: Path, port: int) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        self.workdir = workdir
        self.port = port
        self.account_url = f"http://{HOST}:{port}/{ACCOUNT_NAME}"
        self.connection_string = self.connection_string_for(ACCOUNT_KEY)
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Azurite's console output (appended to across restarts)."""
        return self.workdir / "azurite.log"

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @classmethod
    def start(cls, workdir: Path) -> Self:
        """Start Azurite's Blob service on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds Azurite's data and the log. Raises
        ``RuntimeError`` with the tail of the log if it does not come up (or with a hint
        to run ``deploy/local/emulators.sh install`` if it is not installed); no server
        process is left running in that case.
        """
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        error = ""
        for _ in range(_START_ATTEMPTS):
            server = cls(workdir, free_port())
            try:
                server._launch()
            except _PortInUse as exc:
                # Another process took the port between free_port() and the bind.
                error = str(exc)
                continue
            return server
        raise RuntimeError(f"Azurite did not start in {workdir}:\n{error}")

    def connection_string_for(self, account_key: str) -> str:
        """A connection string for this server that signs with ``account_key``."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={account_key};BlobEndpoint={self.account_url};"
        )

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port.

        Containers and blobs persist (they are stored in ``workdir``). To simulate an
        outage, call :meth:`stop`, wait, then :meth:`restart`. Raises ``RuntimeError`` if
        the server does not come back (for example because another process took the port).
        """
        self.stop()
        try:
            self._launch()
        except _PortInUse as exc:
            raise RuntimeError(f"Azurite could not bind port {self.port} again:\n{exc}") from None

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop the server (TERM, then KILL after ``timeout`` seconds) and wait for it to exit.

        Signals only this server's own PID. Calling it again does nothing.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_TIMEOUT_S)

    def client(self, *, account_key: str | None = None, **kwargs: Any) -> BlobServiceClient:
        """A ``BlobServiceClient`` from the connection string.

        ``account_key`` signs with another key (to test rejected credentials); ``kwargs``
        go to the client (for example ``max_single_put_size``, ``max_block_size``).
        """
        key = account_key if account_key is not None else ACCOUNT_KEY
        return BlobServiceClient.from_connection_string(self.connection_string_for(key), **kwargs)

    def _launch(self) -> None:
        command = [
            *azurite_command(),
            "--blobHost", HOST,
            "--blobPort", str(self.port),
            "--location", str(self.workdir),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
            "--silent",
        ]  # fmt: skip
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self._wait_ready(started)
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                tail = _log_tail(self.log_path)
                if "eaddrinuse" in tail.lower():
                    raise _PortInUse(tail)
                raise RuntimeError(
                    f"Azurite exited with code {code} during start-up "
                    f"(log {self.log_path}):\n{tail}"
                )
            # Any HTTP answer means the service listens; an unsigned request gets 403.
            if (
                _http_status(self.port, f"/{ACCOUNT_NAME}?comp=list") is not None
                and proc.poll() is None
            ):
                return
            if time.monotonic() - started > _START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(
                    f"Azurite not ready on {self.account_url} after {_START_TIMEOUT_S:.0f} s "
                    f"(log {self.log_path}):\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def __enter__(self) -> Self:
        """Return the running server."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
