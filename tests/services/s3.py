"""A real S3 endpoint for tests and benchmarks: ``moto_server`` on 127.0.0.1.

``moto_server`` is the HTTP server of the Python package moto (``moto[s3,server]`` with
flask and flask-cors, all in the dev extras). It keeps everything in memory: data is lost
when it stops, including across :meth:`S3Server.restart`.

Authentication: by default moto accepts any access key and any signature. With
``enforce_auth=True`` it checks SigV4 signatures against IAM: the server creates an IAM user
allowed ``s3:*`` and its access key (``server.access_key_id`` / ``server.secret_access_key``),
then switches on moto's IAM checks (``INITIAL_NO_AUTH_ACTION_COUNT`` set to 0 through
``/moto-api/reset-auth``). From then on an unknown key id answers 403 ``InvalidAccessKeyId``
and a wrong secret 403 ``SignatureDoesNotMatch``.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config

from .ports import free_port

HOST = "127.0.0.1"
REGION = "us-east-1"
DUMMY_KEY = "testing"
INSTALL_HINT = "run deploy/local/emulators.sh install"

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
# With a fixed seed, moto generates the same IAM access key after every restart.
_AUTH_SEED = 20240601
_AUTH_USER = "auditstream-tests"
_ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


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


def _post(port: int, path: str, body: bytes) -> None:
    """``POST path`` on 127.0.0.1:``port``; raises ``RuntimeError`` unless it answers 200."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}: {answer[:500]!r}")
    finally:
        connection.close()


def moto_server_command() -> list[str]:
    """The command that runs ``moto_server``: the console script next to this Python, if any."""
    script = Path(sys.executable).parent / "moto_server"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


class _PortInUse(Exception):
    pass


class S3Server:
    """A running ``moto_server`` listening on 127.0.0.1 only.

    Use ``S3Server.start(workdir)`` (or ``with S3Server.start(workdir) as s3:``), then
    ``s3.client()`` or any S3 client pointed at ``s3.endpoint_url`` with path-style
    addressing. Buckets and objects live in the server's memory only.
    """

    def __init__(self, workdir: Path, port: int, *, enforce_auth: bool) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        self.workdir = workdir
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        self.region = REGION
        self.enforce_auth = enforce_auth
        self.access_key_id = DUMMY_KEY
        self.secret_access_key = DUMMY_KEY
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr, appended to across restarts)."""
        return self.workdir / "moto.log"

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @classmethod
    def start(cls, workdir: Path, *, enforce_auth: bool = False) -> Self:
        """Start ``moto_server`` on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds the log. ``enforce_auth`` makes the server
        reject requests not signed with ``access_key_id`` / ``secret_access_key`` (see the
        module documentation); without it, any credentials are accepted. Raises
        ``RuntimeError`` with the tail of the log if the server does not come up; no server
        process is left running in that case.
        """
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        error = ""
        for _ in range(_START_ATTEMPTS):
            server = cls(workdir, free_port(), enforce_auth=enforce_auth)
            try:
                server._launch()
            except _PortInUse as exc:
                # Another process took the port between free_port() and the bind.
                error = str(exc)
                continue
            return server
        raise RuntimeError(f"moto_server did not start in {workdir}:\n{error}")

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port.

        moto keeps no data across a restart: buckets and objects are gone. With
        ``enforce_auth`` the same IAM access key is set up again. To simulate an outage,
        call :meth:`stop`, wait, then :meth:`restart`. Raises ``RuntimeError`` if the
        server does not come back (for example because another process took the port).
        """
        self.stop()
        try:
            self._launch()
        except _PortInUse as exc:
            raise RuntimeError(
                f"moto_server could not bind port {self.port} again:\n{exc}"
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

    def client(
        self,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        **config: Any,
    ) -> Any:
        """A boto3 S3 client for this server: path-style addressing, region us-east-1.

        Credentials default to the server's (``testing``/``testing`` unless
        ``enforce_auth``); pass others to test rejected credentials. ``config`` adds
        ``botocore.config.Config`` options (for example ``retries``).
        """
        options: dict[str, Any] = {"s3": {"addressing_style": "path"}, **config}
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key_id if access_key_id is not None else self.access_key_id,
            aws_secret_access_key=(
                secret_access_key if secret_access_key is not None else self.secret_access_key
            ),
            config=Config(**options),
        )

    def _launch(self) -> None:
        command = [*moto_server_command(), "--host", HOST, "--port", str(self.port)]
        env = dict(os.environ)
        # Authentication is switched on explicitly, after the IAM user exists.
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=env,
                )
            except OSError as exc:
                raise RuntimeError(f"cannot run moto_server ({exc}); {INSTALL_HINT}") from exc
        self._wait_ready(started)
        if self.enforce_auth:
            try:
                self._enable_auth()
            except Exception as exc:
                self.stop()
                raise RuntimeError(
                    f"enabling authentication on moto_server failed: {exc}\n"
                    f"{_log_tail(self.log_path)}"
                ) from exc
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
                    f"moto_server exited with code {code} during start-up "
                    f"(log {self.log_path}; if it is not installed, {INSTALL_HINT}):\n{tail}"
                )
            if _http_status(self.port, "/moto-api/") is not None and proc.poll() is None:
                return
            if time.monotonic() - started > _START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(
                    f"moto_server not ready on {self.endpoint_url} after {_START_TIMEOUT_S:.0f} s "
                    f"(log {self.log_path}):\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _enable_auth(self) -> None:
        _post(self.port, f"/moto-api/seed?a={_AUTH_SEED}", b"")
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        iam.create_user(UserName=_AUTH_USER)
        iam.put_user_policy(
            UserName=_AUTH_USER, PolicyName="allow-s3", PolicyDocument=json.dumps(_ALLOW_S3)
        )
        key = iam.create_access_key(UserName=_AUTH_USER)["AccessKey"]
        if self.access_key_id not in (DUMMY_KEY, key["AccessKeyId"]):
            raise RuntimeError(
                f"the IAM access key changed across the restart ({self.access_key_id} became "
                f"{key['AccessKeyId']})"
            )
        self.access_key_id = str(key["AccessKeyId"])
        self.secret_access_key = str(key["SecretAccessKey"])
        _post(self.port, "/moto-api/reset-auth", b"0")

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
