"""Commands pointed at a Kafka address where nothing listens end within seconds with one line
that names the address and what to check, and exit status 2: no flood of client log lines,
no traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from devservices.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = {
    "settings apply": ["settings", "apply", "-f", str(ROOT / "config" / "demo.yaml")],
    "router": ["router"],
    "simulate": ["simulate", "--events", "10", "--quiet"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_one_line_and_exit_2_when_no_broker_answers(command: list[str], tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # free: nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "auditstream", *command, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith(f"auditstream: error: no Kafka broker answers at {bootstrap} within")
    assert "Connection refused" in line
    assert "deploy/local/kafka.sh start" in line
    assert "--bootstrap" in line
    assert elapsed < 30, f"took {elapsed:.0f} s"  # a generous bound: it waits about 10 s
