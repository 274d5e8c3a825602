"""What a benchmark prints: progress lines, nearest-rank percentiles, aligned tables and the
run's figures as JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MB = 1_000_000

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """One line on stderr so a long run shows life."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """``count``, ``p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms`` of durations in seconds:
    the fields of every latency row."""
    s = sorted(seconds)
    return {
        "count": len(s),
        "p50_ms": percentile(s, 50) * 1000,
        "p95_ms": percentile(s, 95) * 1000,
        "p99_ms": percentile(s, 99) * 1000,
        "max_ms": (s[-1] * 1000) if s else math.nan,
    }


def per_second(amount: float, seconds: float) -> float:
    """``amount`` per second; NaN when no time was measured."""
    return amount / seconds if seconds > 0 else math.nan


def num(x: float | None, spec: str) -> str:
    """``x`` formatted with ``spec``; ``-`` for a figure that does not exist (None or NaN)."""
    if x is None or math.isnan(x):
        return "-"
    return format(x, spec)


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    align: str = ">"
    """``>`` for figures, ``<`` for names."""


def table(columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> list[str]:
    """The header, a rule as long as the header, one line per row of already formatted cells,
    and an empty line. A cell wider than its column pushes the rest of its line right."""

    def line(cells: Sequence[str]) -> str:
        return " ".join(
            f"{cell:{c.align}{c.width}}" for c, cell in zip(columns, cells, strict=True)
        )

    head = line([c.title for c in columns])
    return [head, "-" * len(head), *(line(cells) for cells in rows), ""]


def notes(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def run_meta(command: str) -> dict[str, Any]:
    """What every report starts with: the command line, when, and the machine."""
    return {
        "command": " ".join([command, *sys.argv[1:]]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def finite(value: Any) -> Any:
    """``value`` with NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.write_text(json.dumps(finite(figures), indent=2, allow_nan=False, default=str))
    progress(f"figures written to {path}")
