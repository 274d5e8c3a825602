"""A real Prometheus server for tests: 127.0.0.1, a free port, a temporary storage folder,
stopped by its own PID; and what the tests read from its HTTP API."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from devservices.local_process import http_status, log_tail, terminate
from devservices.ports import free_port
from tests.deploy.tools import prometheus

START_TIMEOUT_S = 60.0
START_ATTEMPTS = 3


class PrometheusServer:
    """``prometheus --config.file=<config>`` on 127.0.0.1; ``with PrometheusServer.start(...)``
    stops it when the block ends."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)

    @classmethod
    def start(cls, config: Path, work: Path) -> PrometheusServer:
        """Start on a free port (another one if the port was taken meanwhile) and wait until
        it answers /-/ready."""
        work.mkdir(parents=True, exist_ok=True)
        log = work / "prometheus.log"
        for _attempt in range(START_ATTEMPTS):
            port = free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        prometheus(),
                        f"--config.file={config}",
                        f"--storage.tsdb.path={work / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if http_status(port, "/-/ready") == 200:
                    return cls(proc, port, log)
                time.sleep(0.2)
            terminate(proc, 10.0)
            if "address already in use" not in log.read_text(errors="replace"):
                break
        raise RuntimeError(f"prometheus did not start; its log ends:\n{log_tail(log)}")

    def stop(self) -> None:
        self.client.close()
        terminate(self.proc, 10.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the HTTP API ---------------------------------------------------------------------------

    def _get(self, path: str, **params: str) -> Any:
        response = self.client.get(path, params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now (an error fails the test)."""
        data = self._get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result if data["resultType"] == "vector" else [{"value": result}]

    def metric_names(self) -> set[str]:
        return set(self._get("/api/v1/label/__name__/values"))

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def targets_up(self) -> dict[str, str]:
        """Each active target's job and its health (up, down, unknown)."""
        targets = self._get("/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in targets}


_NOT_NAMES = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
        "and", "or", "unless", "inf", "nan",
    }
)  # fmt: skip


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are neither functions,
    keywords, label names (inside ``{}``, ``by (...)`` and the like), durations nor strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _NOT_NAMES:
            continue
        names.add(name)
    return names
