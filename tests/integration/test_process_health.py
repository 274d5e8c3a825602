"""The router and sink worker processes serve /metrics, /healthz and /readyz on their metrics
port: ready once their log is open and their loop polls; SIGTERM drains and ends them with
status 0; with ``--log-format json`` every log line is a JSON object."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devservices.ports import free_port
from devservices.processes import ProjectProcess


def _get(port: int, path: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None


def _wait_ready(process: ProjectProcess, port: int) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while True:
        assert process.alive(), process.output()
        answer = _get(port, "/readyz")
        if answer is not None and answer[0] == 200:
            body: dict[str, object] = json.loads(answer[1])
            return body
        assert time.monotonic() < deadline, (answer, process.output())
        time.sleep(0.2)


@pytest.mark.parametrize(
    "command",
    [
        ["router", "--stop-grace", "20"],
        ["sink-worker", "--drain-timeout", "10", "--no-address-check"],
    ],
    ids=["router", "sink-worker"],
)
def test_health_endpoints_and_a_clean_stop(command: list[str], tmp_path: Path) -> None:
    port = free_port()
    args = ["--log-format", "json", *command, "--backend", "embedded"]
    args += ["--db", str(tmp_path / "log.sqlite")]
    args += ["--metrics-port", str(port)]
    with ProjectProcess(args, tmp_path / "process.log") as process:
        body = _wait_ready(process, port)
        assert body["ready"] is True
        assert body["connected"] is True
        assert _get(port, "/healthz") == (200, "ok\n")
        metrics = _get(port, "/metrics")
        assert metrics is not None
        assert metrics[0] == 200
        assert "# TYPE" in metrics[1]
        code = process.stop(timeout=60)
    assert code == 0, process.output()
    # The logs: one JSON object per line.
    logged = [json.loads(line) for line in process.output().splitlines() if line.strip()]
    assert any("running on embedded" in line["message"] for line in logged), logged
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in logged)


def test_the_settings_api_serves_health_on_its_metrics_port(tmp_path: Path) -> None:
    from auditstream.config.secrets import SecretBox

    port, api_port = free_port(), free_port()
    args = ["api", "--backend", "embedded", "--db", str(tmp_path / "log.sqlite")]
    args += ["--port", str(api_port), "--metrics-port", str(port)]
    env = {"AUDITSTREAM_SECRET_KEYS": SecretBox.generate_key()}
    with ProjectProcess(args, tmp_path / "api.log", env=env) as process:
        body = _wait_ready(process, port)
        assert body["connected"] is True
        assert _get(port, "/healthz") == (200, "ok\n")
        metrics = _get(port, "/metrics")
        assert metrics is not None
        assert metrics[0] == 200
        # SIGTERM once the API serves: uvicorn shuts down gracefully, then ends the process
        # by the signal it caught (status -15) as a process without a handler would.
        deadline = time.monotonic() + 60
        while _get(api_port, "/healthz") is None:
            assert process.alive(), process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.2)
        code = process.stop(timeout=60)
    assert code in (0, -signal.SIGTERM), process.output()
    assert "Application shutdown complete" in process.output()
