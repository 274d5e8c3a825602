"""The README's "Running against Kafka" and "Settings API" blocks, run as written on a real
broker: every command as a subprocess, in order, with only the ports and the broker's data
folder changed; then what the text says happened is checked (objects, counts, metrics)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devservices.kafka import KafkaBroker
from devservices.local_process import terminate
from devservices.ports import free_port
from devservices.stored_objects import decode_object
from tests.readme_blocks import Command, commands, section, sh_blocks

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = Path(sys.executable).parent

KAFKA_START = re.compile(
    r"^deploy/local/kafka\.sh start --port 9092 --controller-port 9093 --data (?P<data>\S+)$"
)
ACTIVATE = ". .venv/bin/activate"

EXPECTED_EVENTS = {
    "acme-archive": 841,
    "globex-siem": 1989,
    "globex-lake": 1989,
    "umbrella-ops": 195,
}
"""What the text says each destination receives (the demo's table for 10,000 events)."""
OBJECT_NAME = re.compile(
    r"^(?P<dest>[a-z-]+)/(?P<prefix>audit|auditstream)/account=(?P<account>[a-z]+)/"
    r"date=\d{4}-\d{2}-\d{2}/\d{3}-\d{20}\.(?:ndjson\.gz|ndjson\.zst|ndjson|avro)$"
)
OUTPUT_WAIT_S = 120.0
"""How long a counting command may take to show the promised number (a loaded machine)."""


class Shell:
    """Runs README commands one by one in ``cwd``: exported variables carry over, background
    commands keep running until :meth:`stop`."""

    def __init__(self, cwd: Path, substitutions: dict[str, str]) -> None:
        self.cwd = cwd
        self.substitutions = substitutions
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
        # `. .venv/bin/activate` in a test: the virtualenv running the tests comes first.
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        self.env = env
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def _text(self, command: Command) -> str:
        text = command.text
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, command: Command) -> None:
        text = self._text(command)
        if command.background:
            self._start(text)
            return
        export = re.match(r"^export (\w+)=(.*)$", text)
        if export:
            name = export.group(1)
            result = self._bash(f'{text}\nprintf %s "${name}"')
            self.env[name] = result.stdout
            return
        if command.expected is not None:
            self._until_output(text, command.expected)
            return
        self.outputs[command.text] = self._bash(text)

    def _bash(self, text: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", text],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{text}\n{result.stdout}\n{result.stderr}"
        return result

    def _until_output(self, text: str, expected: str) -> None:
        deadline = time.monotonic() + OUTPUT_WAIT_S
        while True:
            result = subprocess.run(
                ["bash", "-c", text],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.stdout.strip() == expected or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert result.stdout.strip() == expected, f"{text}\n{result.stderr}\n{self.logs()}"

    def _start(self, text: str) -> None:
        log_path = self.cwd / f"background-{len(self.background)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {text}"],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.background.append((text, proc, log_path))
        for port in re.findall(r"--(?:metrics-)?port (\d+)", text):
            _wait_for_port(int(port), proc, log_path)

    def logs(self) -> str:
        return "\n".join(
            f"--- {text}\n{path.read_text(errors='replace')[-3000:]}"
            for text, _, path in self.background
        )

    def stop(self) -> list[int]:
        codes = []
        for _, proc, _ in reversed(self.background):
            terminate(proc, 30)
            codes.append(proc.returncode)
        return codes


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait until a background process listens on ``port`` (it fails the test if it exits)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"nothing listens on {port}:\n{log_path.read_text(errors='replace')}")


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} not in the metrics"
    return float(match.group(1))


def _events_per_destination(out: Path) -> Counter[str]:
    received: Counter[str] = Counter()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        match = OBJECT_NAME.match(name)
        assert match, f"unexpected object name {name}"
        received[match["dest"]] += len(decode_object(name, path.read_bytes()))
    return received


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[tuple[Shell, KafkaBroker]]:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "config").symlink_to(ROOT / "config")  # the commands read config/demo.yaml
    with KafkaBroker.start(tmp_path / "kafka") as broker:
        substitutions = {
            "127.0.0.1:9092": broker.bootstrap,
            "--metrics-port 9101": f"--metrics-port {free_port()}",
            "--metrics-port 9102": f"--metrics-port {free_port()}",
        }
        api_port = free_port()
        substitutions["--port 8080"] = f"--port {api_port}"
        substitutions["http://127.0.0.1:8080"] = f"http://127.0.0.1:{api_port}"
        sh = Shell(clone, substitutions)
        try:
            yield sh, broker
        finally:
            sh.stop()


def _run_block(sh: Shell, block: list[Command]) -> None:
    for command in block:
        if KAFKA_START.match(command.text):
            continue  # the broker the fixture started with the same script, on free ports
        if command.text == ACTIVATE:
            continue  # PATH starts with the tests' virtualenv
        sh.run(command)


def test_running_against_kafka_then_the_settings_api(shell: tuple[Shell, KafkaBroker]) -> None:
    sh, _broker = shell
    kafka_text = section(README, "Running against Kafka")
    (kafka_block,) = sh_blocks(kafka_text)
    kafka_commands = commands(kafka_block)
    assert KAFKA_START.match(kafka_commands[0].text), "the block starts with a local broker"
    _run_block(sh, kafka_commands)

    # What the text says happened.
    simulate = next(r for c, r in sh.outputs.items() if c.startswith("auditstream simulate"))
    assert "produced 10000 events for 5 accounts" in simulate.stdout
    assert "no stream settings for hooli" in simulate.stderr
    received = _events_per_destination(sh.cwd / "auditstream-out")
    assert dict(received) == EXPECTED_EVENTS, sh.logs()
    for n in (841, 1989, 195, 10_000, 5_014):
        assert f"{n:,}" in kafka_text, f"the text no longer says {n:,}"
    router_metrics = sh.substitutions["--metrics-port 9101"].split()[-1]
    metrics = httpx.get(f"http://127.0.0.1:{router_metrics}/metrics", timeout=10).text
    assert _metric(metrics, "auditstream_router_events_consumed_total") == 10_000
    assert _metric(metrics, "auditstream_router_events_routed_total") == sum(
        EXPECTED_EVENTS.values()
    )

    api_text = section(README, "Settings API")
    (api_block,) = sh_blocks(api_text)
    _run_block(sh, commands(api_block))
    check = next(r for c, r in sh.outputs.items() if "destinations check" in c)
    assert '"ok": true' in check.stdout
    status = next(r for c, r in sh.outputs.items() if "destinations status" in c)
    assert '"destination_id": "acme-files"' in status.stdout

    # A clean stop: the commands return 0; uvicorn (the API) ends by the signal it was sent.
    assert set(sh.stop()) <= {0, -signal.SIGTERM}, sh.logs()
    assert "Traceback" not in sh.logs()
