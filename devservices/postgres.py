"""A real PostgreSQL server for tests and benchmarks: ``initdb`` and ``pg_ctl`` of Debian's
``postgresql`` package on a temporary directory, listening on 127.0.0.1 and a free port.

``deploy/local/postgres.sh install`` puts the binaries in place. ``initdb`` refuses to run as
root, so as root every server binary runs as the unprivileged ``postgres`` user (which the
package creates) through ``runuser``, in a data directory owned by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from .local_process import StopOnExit, log_tail
from .ports import free_port

HOST = "127.0.0.1"
SERVER_USER = "postgres"
"""The unprivileged user the binaries run as when this process is root."""
SUPERUSER = "postgres"
DATABASE = "auditstream"
ROLE = "auditstream"

_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_INSTALL_HINT = "run `bash deploy/local/postgres.sh install` (as root on Debian)"
_INITDB_TIMEOUT_S = 120.0
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 30.0
_START_ATTEMPTS = 3
# Test settings: no fsync (the tests crash processes, never the machine, so what reached
# the kernel survives a kill -9; commits stay synchronous for that reason).
_SERVER_OPTIONS = (
    "fsync=off",
    "full_page_writes=off",
    "max_connections=200",
    "shared_buffers=128MB",
)


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or the one ``pg_config`` names).

    Raises ``RuntimeError`` saying how to install PostgreSQL when there is none."""
    found = [p for p in Path("/").glob(_BIN_GLOB.lstrip("/")) if (p / "initdb").is_file()]
    if found:
        return max(found, key=lambda p: _version_key(p.parent.name))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").is_file():
            return candidate
    raise RuntimeError(
        f"the PostgreSQL server binaries (initdb, pg_ctl) are missing: {_INSTALL_HINT}"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class PostgresServer(StopOnExit):
    """A running server on 127.0.0.1:``port``, data in a temporary directory of its own.

    Use ``PostgresServer.start(workdir)`` (or ``with PostgresServer.start(workdir) as pg:``).
    ``dsn`` connects as the password role ``auditstream`` (owner of database ``auditstream``);
    ``admin_dsn`` as the superuser. ``create_database(name)`` gives a test a database of its
    own. ``stop()`` ends the server (``pg_ctl stop -m fast``, then KILL by its PID) and removes
    its data; ``restart()`` after ``stop_keeping_data()`` brings it back on the same port.
    """

    def __init__(self, workdir: Path, data_root: Path, port: int, password: str) -> None:
        """Describe a server; use :meth:`start` to run one."""
        self.workdir = workdir
        self.port = port
        self.password = password
        self._root = data_root
        self._bin = bin_dir()
        self._pid: int | None = None
        self._removed = False

    # --- addresses -------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """``postgresql://auditstream:...@127.0.0.1:port/auditstream``."""
        return self.dsn_for(DATABASE)

    @property
    def admin_dsn(self) -> str:
        """The superuser's DSN for database ``postgres`` (over TCP, with its password)."""
        return f"postgresql://{SUPERUSER}:{self.password}@{HOST}:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        """The password role's DSN for ``database``."""
        return f"postgresql://{ROLE}:{self.password}@{HOST}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def socket_dir(self) -> Path:
        return self._root / "sock"

    @property
    def log_path(self) -> Path:
        """The server's log (stdout and stderr of the postmaster, across restarts)."""
        return self.workdir / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs."""
        return self._pid

    # --- life cycle ------------------------------------------------------------------------

    @classmethod
    def start(cls, workdir: Path) -> PostgresServer:
        """``initdb`` a new cluster, start it on a free 127.0.0.1 port, create the role and
        database, and return once it accepts connections.

        Raises ``RuntimeError`` with the tail of the server log (and how to install the
        binaries when they are missing); no server process is left running then."""
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="auditstream-pg-"))
        password = secrets.token_urlsafe(18)
        server = cls(workdir, root, 0, password)
        try:
            server._initdb()
            error = ""
            for _ in range(_START_ATTEMPTS):
                server.port = free_port()
                try:
                    server._pg_ctl_start()
                except _PortTaken as exc:
                    error = str(exc)  # another process took the port meanwhile
                    continue
                server._create_role_and_database()
                return server
            raise RuntimeError(f"PostgreSQL did not start in {root}:\n{error}")
        except BaseException:
            server.stop()
            raise

    def stop_keeping_data(self) -> None:
        """Stop the server (an outage); :meth:`restart` brings it back with its data."""
        if self._pid is None:
            return
        result = self._run(
            [str(self._bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"],
            timeout=_STOP_TIMEOUT_S,
        )
        pid, self._pid = self._pid, None
        if result is None or result.returncode != 0:
            _kill_and_wait(pid)
        else:
            _wait_gone(pid, _STOP_TIMEOUT_S)

    def kill9(self) -> None:
        """Crash the postmaster (SIGKILL; its backends end when they notice); data stays."""
        pid, self._pid = self._pid, None
        if pid is not None:
            _kill_and_wait(pid)
            # Orphaned backends end on their own once the postmaster is gone; the next start
            # must not find them holding the shared memory.
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while _backends_alive(self.data_dir) and time.monotonic() < deadline:
                time.sleep(0.05)

    def restart(self) -> None:
        """Start the stopped server again on the same port with the same data.

        Raises ``RuntimeError`` if it does not come back."""
        self.stop_keeping_data()
        try:
            self._pg_ctl_start()
        except _PortTaken as exc:
            raise RuntimeError(
                f"PostgreSQL could not bind port {self.port} again:\n{exc}"
            ) from None

    def stop(self) -> None:
        """Stop the server and remove its data directory. Calling it again does nothing."""
        try:
            self.stop_keeping_data()
        finally:
            if not self._removed:
                self._removed = True
                shutil.rmtree(self._root, ignore_errors=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database owned by the password role (a copy of ``template`` if given, which
        nobody may be connected to); returns its DSN."""
        statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(ROLE)
        )
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending the sessions still connected to it."""
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # --- steps -----------------------------------------------------------------------------

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root needs `runuser` (util-linux) to start PostgreSQL")
        return ["runuser", "-u", SERVER_USER, "--"]

    def _run(
        self, command: list[str], timeout: float, log: bool = True
    ) -> subprocess.CompletedProcess[bytes] | None:
        """``command`` as the server user, its output appended to the log; None on timeout."""
        with self.log_path.open("ab") as out:
            out.write(f"--- {' '.join(command)}\n".encode())
            out.flush()
            try:
                return subprocess.run(
                    [*self._as_server_user(), *command],
                    stdin=subprocess.DEVNULL,
                    stdout=out if log else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    cwd=self._root,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return None

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        pwfile = self._root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root needs the unprivileged user {SERVER_USER!r}: "
                    f"{_INSTALL_HINT} (the package creates it)"
                ) from None
            for path in (self._root, self.socket_dir, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        result = self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            timeout=_INITDB_TIMEOUT_S,
        )
        pwfile.unlink()
        if result is None or result.returncode != 0:
            raise RuntimeError(
                f"initdb failed in {self.data_dir} (log {self.log_path}):\n"
                f"{log_tail(self.log_path)}"
            )

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-c listen_addresses={HOST}",
                f"-p {self.port}",
                f"-c unix_socket_directories={self.socket_dir}",
                *(f"-c {o}" for o in _SERVER_OPTIONS),
            ]
        )
        # pg_ctl starts the postmaster in a session of its own; its output goes to our log
        # file through the inherited descriptor (the server user need not reach workdir).
        result = self._run(
            [
                str(self._bin / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-o",
                options,
            ],
            timeout=_START_TIMEOUT_S + 10,
        )
        pid = _postmaster_pid(self.data_dir)
        if result is not None and result.returncode == 0 and pid is not None:
            self._pid = pid
            return
        if pid is not None:
            _kill_and_wait(pid)
        tail = log_tail(self.log_path)
        if "address already in use" in tail.lower() and f"{self.port}" in tail:
            raise _PortTaken(tail)
        raise RuntimeError(
            f"PostgreSQL did not start on {HOST}:{self.port} (log {self.log_path}):\n{tail}"
        )

    def _create_role_and_database(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)
                )
            )
        self.create_database(DATABASE)


class _PortTaken(Exception):
    pass


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_and_wait(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, _STOP_TIMEOUT_S)


def _backends_alive(data_dir: Path) -> bool:
    """Whether a process still runs with ``data_dir`` open as its working directory (a
    backend of a killed postmaster)."""
    target = str(data_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd") == target:
                return True
    return False
