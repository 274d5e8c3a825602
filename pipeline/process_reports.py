"""What each running router and sink worker says about the settings it applies, published to
the compacted status topic under ``process/<role>/<id>`` (destination ids cannot contain ``/``,
so these keys never collide with destination status records).

A process that cannot apply an account's latest settings (its key does not open the secrets,
the record is invalid) keeps routing with the account's previous settings; without a report,
the settings API would show that account's destinations as healthy while events are not going
where the account asked. The API reads these reports and says so (``settings_applied``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.pipeline.settings_table import Unapplied

log = logging.getLogger(__name__)

KEY_PREFIX = "process/"


@dataclass(frozen=True, slots=True)
class ProcessReport:
    role: str  # "router" or "sink-worker"
    process_id: str
    reported_at: float
    unapplied: dict[str, str]  # account id -> why its latest settings are not applied


def report_key(role: str, process_id: str) -> bytes:
    return f"{KEY_PREFIX}{role}/{process_id}".encode()


def is_report_key(key: bytes | None) -> bool:
    return key is not None and key.startswith(KEY_PREFIX.encode())


def encode_report(report: ProcessReport) -> bytes:
    return orjson.dumps(
        {
            "role": report.role,
            "process_id": report.process_id,
            "reported_at": report.reported_at,
            "unapplied": report.unapplied,
        }
    )


def decode_report(value: bytes) -> ProcessReport:
    """Raises ``ValueError`` for a value that is not a process report."""
    data = orjson.loads(value)
    if not isinstance(data, dict) or not isinstance(data.get("unapplied"), dict):
        raise ValueError("not a process report")
    return ProcessReport(
        role=str(data.get("role", "")),
        process_id=str(data.get("process_id", "")),
        reported_at=float(data.get("reported_at", 0.0)),
        unapplied={str(k): str(v) for k, v in data["unapplied"].items()},
    )


def unapplied_for(
    reports: Mapping[bytes, ProcessReport], account_id: str, *, now: float, max_age: float
) -> list[str]:
    """Why live processes (reported within ``max_age`` seconds) have not applied the account's
    latest settings: one line per process that has not. Pure."""
    return [
        f"{r.role} {r.process_id}: {r.unapplied[account_id]}"
        for r in reports.values()
        if account_id in r.unapplied and now - r.reported_at <= max_age
    ]


class ProcessReporter:
    """Publishes this process's report when what it cannot apply changes, and every
    ``interval`` seconds otherwise (a heartbeat: an old report means a stopped process). Best
    effort: a failed publish is logged and tried again next time."""

    def __init__(
        self, log_backend: Log, role: str, process_id: str, interval: float = 10.0
    ) -> None:
        self._producer = log_backend.producer()
        self._role = role
        self._id = process_id
        self._interval = interval
        self._last: tuple[dict[str, str], float] | None = None

    def maybe_publish(self, unapplied: Mapping[str, Unapplied]) -> None:
        now = time.time()
        reasons = {account: u.reason for account, u in sorted(unapplied.items())}
        last = self._last
        if last is not None and last[0] == reasons and now - last[1] < self._interval:
            return
        report = ProcessReport(self._role, self._id, now, reasons)
        try:
            self._producer.produce(
                OutgoingRecord(
                    topics.STATUS, encode_report(report), key=report_key(self._role, self._id)
                )
            )
            self._producer.flush(5.0)
        except LogError as exc:
            log.warning("process report not published: %s", exc)
            return
        self._last = (reasons, now)

    def close(self) -> None:
        self._producer.close()
