"""What the local test servers share: a process on a free 127.0.0.1 port, its log, its stop.

:class:`LocalServer` runs one server process (moto_server, fake-gcs-server, Azurite):
it picks a free port, spawns the process with stdout and stderr appended to a log file in
the work directory, waits until the server answers, retries on another port when the one
it picked was taken in the meantime, stops the process by its own PID (TERM, then KILL)
and restarts it on the same port. A subclass says what to run (:meth:`LocalServer._command`)
and when it is ready (:meth:`LocalServer._ready`).
"""

from __future__ import annotations

import http.client
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from .ports import free_port

HOST = "127.0.0.1"

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the file ``log``, or a note that there is none."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"


def http_status(port: int, path: str) -> int | None:
    """The HTTP status of ``GET path`` on 127.0.0.1:``port``, or ``None`` if nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Send ``proc`` TERM, then KILL if it has not exited after ``timeout`` s; wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


class StopOnExit:
    """The context-manager part: ``with X.start(...) as x:`` stops ``x`` when the block ends."""

    def stop(self) -> None:
        """Stop the service; subclasses say how."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """Return the running service."""
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the service."""
        self.stop()


class PortInUse(Exception):
    """The server exited during start-up because its port was taken (the log tail says so)."""


class LocalServer(StopOnExit):
    """A server process on 127.0.0.1:``port`` with its log in ``workdir``.

    Subclasses set :attr:`name` (for messages), :attr:`log_name` and
    :attr:`port_in_use_text` (what the log says when the bind fails, lower case), and
    implement :meth:`_command` and :meth:`_ready`; :meth:`_env` and :meth:`_prepare` are
    optional hooks.
    """

    name: ClassVar[str]
    log_name: ClassVar[str]
    port_in_use_text: ClassVar[str] = "address already in use"
    install_hint: ClassVar[str] = ""
    poll_interval: ClassVar[float] = 0.1

    def __init__(self, workdir: Path, port: int) -> None:
        """Describe a server in ``workdir`` on ``port``; use ``start`` to run one."""
        self.workdir = workdir
        self.port = port
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr, appended to across restarts)."""
        return self.workdir / self.log_name

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @classmethod
    def _start_on_free_port(cls, workdir: Path, **options: Any) -> Self:
        """``cls(workdir, port, **options)`` launched on a free port, retried on port races.

        Raises ``RuntimeError`` if the server does not come up; no process is left running.
        """
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        error = ""
        for _ in range(START_ATTEMPTS):
            server = cls(workdir, free_port(), **options)
            try:
                server._launch()
            except PortInUse as exc:
                # Another process took the port between free_port() and the bind.
                error = str(exc)
                continue
            return server
        raise RuntimeError(f"{cls.name} did not start in {workdir}:\n{error}")

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port.

        What data survives depends on the server (see its class). To simulate an outage,
        call :meth:`stop`, wait, then :meth:`restart`. Raises ``RuntimeError`` if the
        server does not come back (for example because another process took the port).
        """
        self.stop()
        try:
            self._launch()
        except PortInUse as exc:
            raise RuntimeError(
                f"{self.name} could not bind port {self.port} again:\n{exc}"
            ) from None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the server (TERM, then KILL after ``timeout`` seconds) and wait for it to exit.

        Signals only this server's own PID. Calling it again does nothing.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, timeout)

    def _command(self) -> list[str]:
        """The command line; raises ``RuntimeError`` if the server is not installed."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the (running) server answers requests."""
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        """The server's environment (``None``: this process's)."""
        return None

    def _prepare(self) -> None:
        """Set up the server once it answers (nothing by default); may raise."""

    def _launch(self) -> None:
        command = self._command()
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
                    env=self._env(),
                )
            except OSError as exc:
                hint = f"; {self.install_hint}" if self.install_hint else ""
                raise RuntimeError(f"cannot run {self.name} ({exc}){hint}") from exc
        self._wait_ready(started)
        try:
            self._prepare()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                tail = log_tail(self.log_path)
                if self.port_in_use_text in tail.lower():
                    raise PortInUse(tail)
                hint = f"; if it is not installed, {self.install_hint}" if self.install_hint else ""
                raise RuntimeError(
                    f"{self.name} exited with code {code} during start-up "
                    f"(log {self.log_path}{hint}):\n{tail}"
                )
            if self._ready() and proc.poll() is None:
                return
            if time.monotonic() - started > START_TIMEOUT_S:
                self.stop()
                raise RuntimeError(
                    f"{self.name} not ready on http://{HOST}:{self.port} after "
                    f"{START_TIMEOUT_S:.0f} s (log {self.log_path}):\n{log_tail(self.log_path)}"
                )
            time.sleep(self.poll_interval)
