"""The audit store's deployment wiring against a real PostgreSQL server (scram-sha-256 on
127.0.0.1): the Compose entrypoint hands the password from its secret file to a real
`auditstream store migrate` whose URL holds none; the migration is safe to run again, twice at
once, and after a kill -9 in the middle (as a Helm hook Job retried, or a Compose `up` run
again, does); a wrong password stops it with an error that never shows the password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from devservices.postgres import PostgresServer
from tests.deploy.tools import DEPLOY

COMPOSE = DEPLOY / "compose" / "compose.yaml"
PASSWORD_SECRET = "/run/secrets/postgres_password"
VENV_BIN = Path(sys.executable).parent


def _entrypoint(secret_file: Path) -> list[str]:
    """The store services' entrypoint as the container runs it, the secret moved."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    script = services["indexer"]["entrypoint"]
    assert services["store-migrate"]["entrypoint"] == script
    shell = script[2].replace("$$", "$").replace(PASSWORD_SECRET, str(secret_file))
    return [script[0], script[1], shell, script[3]]


def _url_without_password(server: PostgresServer, database: str) -> str:
    parts = urlsplit(server.dsn_for(database))
    return f"postgresql://{parts.username}@{parts.hostname}:{parts.port}{parts.path}"


def _start_migrate(
    tmp_path: Path, server: PostgresServer, database: str, password: str
) -> subprocess.Popen[str]:
    secret = tmp_path / f"secret-{uuid.uuid4().hex[:8]}"
    secret.write_text(password + "\n")  # as `echo ... >` writes it
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "AUDITSTREAM_STORE": _url_without_password(server, database),
        # No ~/.pgpass or service file of this machine may supply the password instead.
        "PGPASSFILE": str(tmp_path / "no-pgpass"),
        "HOME": str(tmp_path),
    }
    return subprocess.Popen(
        [*_entrypoint(secret), "store", "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _migrate(
    tmp_path: Path, server: PostgresServer, database: str, password: str
) -> subprocess.CompletedProcess[str]:
    proc = _start_migrate(tmp_path, server, database, password)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _tables(server: PostgresServer, database: str) -> set[str]:
    with psycopg.connect(server.dsn_for(database)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    name = f"deploy_{uuid.uuid4().hex[:16]}"
    postgres_server.create_database(name)
    return name


def test_migrate_logs_in_with_the_secret_and_runs_again_unchanged(
    tmp_path: Path, postgres_server: PostgresServer, database: str
) -> None:
    first = _migrate(tmp_path, postgres_server, database, postgres_server.password)
    assert first.returncode == 0, first.stderr
    assert "tables up to date" in first.stdout
    assert postgres_server.password not in first.stdout + first.stderr
    tables = _tables(postgres_server, database)
    assert {"events", "account_chains"} <= tables
    again = _migrate(tmp_path, postgres_server, database, postgres_server.password)
    assert again.returncode == 0, again.stderr
    assert _tables(postgres_server, database) == tables


def test_two_migrations_at_once_both_succeed(
    tmp_path: Path, postgres_server: PostgresServer, database: str
) -> None:
    procs = [
        _start_migrate(tmp_path, postgres_server, database, postgres_server.password)
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "tables up to date" in out
    assert "events" in _tables(postgres_server, database)


def test_a_migration_killed_midway_is_finished_by_the_next(
    tmp_path: Path, postgres_server: PostgresServer, database: str
) -> None:
    proc = _start_migrate(tmp_path, postgres_server, database, postgres_server.password)
    # Killed once it holds a connection to the database (its migration under way, or done).
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        while proc.poll() is None:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            if row and row[0]:
                break
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    done = _migrate(tmp_path, postgres_server, database, postgres_server.password)
    assert done.returncode == 0, done.stderr
    assert {"events", "account_chains"} <= _tables(postgres_server, database)


@pytest.mark.parametrize(
    "password",
    ["wrong-password", "'; DROP TABLE events; --", "pässwörd\u202e", "x" * 5000, ""],
)
def test_a_wrong_password_stops_with_an_error_that_does_not_show_it(
    tmp_path: Path, postgres_server: PostgresServer, database: str, password: str
) -> None:
    done = _migrate(tmp_path, postgres_server, database, password)
    assert done.returncode != 0
    assert "auditstream" in done.stderr  # says which store it could not open
    if password:
        assert password not in done.stdout + done.stderr
    assert postgres_server.password not in done.stdout + done.stderr
    assert "events" not in _tables(postgres_server, database)
