"""The sink-worker command's delivery options."""

from __future__ import annotations

import pytest

from auditstream import cli
from auditstream.config.errors import ConfigError
from auditstream.sinks.worker import WorkerOptions


def _options(*argv: str, exit_after: int | None = None) -> WorkerOptions:
    args = cli.build_parser().parse_args(["sink-worker", *argv])
    return cli._worker_options(args, exit_after)


def test_defaults() -> None:
    options = _options()
    assert options.delivery_threads == 32
    assert options.max_buffered_bytes == 128 * 1024 * 1024
    assert options.suspend_after == 72 * 3600
    assert options.drain_timeout == 30
    assert options.destination_metrics is True


def test_flags() -> None:
    options = _options(
        "--delivery-threads",
        "8",
        "--max-buffered-mb",
        "64",
        "--suspend-after-hours",
        "1.5",
        "--drain-timeout",
        "5",
        "--no-destination-metrics",
        exit_after=3,
    )
    assert options.delivery_threads == 8
    assert options.max_buffered_bytes == 64 * 1024 * 1024
    assert options.suspend_after == 5400
    assert options.drain_timeout == 5
    assert options.destination_metrics is False
    assert options.exit_after_writes == 3


@pytest.mark.parametrize(
    "flag", ["--delivery-threads", "--max-buffered-mb", "--suspend-after-hours", "--drain-timeout"]
)
def test_a_value_that_is_not_positive_is_refused(flag: str) -> None:
    with pytest.raises(ConfigError, match=f"{flag} must be more than 0"):
        _options(flag, "0")
