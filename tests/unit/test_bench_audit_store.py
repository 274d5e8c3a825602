"""bench.activity_api's pure functions: ``/proc/<pid>/status`` fields, the HTTP query of a store
filter, row counts of the written exports, and the RSS sampler on a real process."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from auditstream.store.query import ActivityFilter
from bench.activity_api import RssSampler, csv_data_rows, line_count, query_params, status_kib
from bench.store_indexing import positive

STATUS = """Name:\tpython
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  812345 kB
VmHWM:\t   90210 kB
VmRSS:\t   80000 kB
Threads:\t9
Cpus_allowed_list:\t0-1
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (STATUS, {"VmPeak": 812345, "VmHWM": 90210, "VmRSS": 80000}),
        ("", {}),
        ("VmRSS:\n", {}),
        ("VmRSS:\t  12 MB\n", {}),
        ("VmRSS:\t  -5 kB\n", {}),
        ("VmRSS:\t  ١٢ kB\n", {}),  # digits of another script are not a size
        ("VmRSS 12 kB\n", {}),
        ("VmRSS:\t" + "9" * 40 + " kB\n", {"VmRSS": int("9" * 40)}),
    ],
)
def test_status_fields(text: str, expected: dict[str, int]) -> None:
    assert status_kib(text) == expected


T = datetime(2026, 9, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ActivityFilter("a"), ()),
        (ActivityFilter("a", actors=("u-1", "x@y")), (("actor", "u-1"), ("actor", "x@y"))),
        (ActivityFilter("a", categories=("recipe",)), (("category", "recipe"),)),
        (
            ActivityFilter("a", since=T, until=T + timedelta(days=7)),
            (("from", "2026-09-01T12:30:00+00:00"), ("to", "2026-09-08T12:30:00+00:00")),
        ),
        (
            ActivityFilter("a", since=T.astimezone(timezone(timedelta(hours=2)))),
            (("from", "2026-09-01T12:30:00+00:00"),),
        ),
        (ActivityFilter("a", text="x' OR 1=1; --"), (("q", "x' OR 1=1; --"),)),
        (ActivityFilter("a", text="ünïcødé 🙂"), (("q", "ünïcødé 🙂"),)),
        (ActivityFilter("a", text=""), (("q", ""),)),
    ],
)
def test_query_params(flt: ActivityFilter, expected: tuple[tuple[str, str], ...]) -> None:
    assert query_params(flt) == expected


@pytest.mark.parametrize(
    "flt",
    [
        ActivityFilter("a", activities=("user_login",)),
        ActivityFilter("a", outcome="failure"),
        ActivityFilter("a", ip="10.0.0.1"),
        ActivityFilter("a", resource_type="recipe"),
    ],
)
def test_query_params_refuses_what_it_cannot_say(flt: ActivityFilter) -> None:
    with pytest.raises(ValueError, match="actors, categories, times and text only"):
        query_params(flt)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("", 0),
        ("\ufeffa,b\r\n", 0),
        ("\ufeffa,b\r\n1,2\r\n", 1),
        ('\ufeffa,b\r\n"line one\r\nline two",2\r\n3,4\r\n', 2),
        ('a,b\r\n"=cmd",""""\r\n', 1),
    ],
)
def test_csv_rows_count_records_not_lines(tmp_path: Path, text: str, rows: int) -> None:
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert csv_data_rows(path) == rows


def test_line_count(tmp_path: Path) -> None:
    path = tmp_path / "export.ndjson"
    path.write_bytes(b'{"a": 1}\n{"b": "\\n"}\n')
    assert line_count(path) == 2


def test_rss_sampler_reads_a_live_process_and_keeps_the_last_reading_of_a_gone_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        with RssSampler(child.pid) as rss:
            seen = rss.samples
            assert seen >= 1
            assert 0 < rss.peak_rss_kib <= rss.hwm_kib
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
        with RssSampler(child.pid) as gone:
            pass
        assert gone.samples == 0
        assert gone.peak_rss_kib == gone.hwm_kib == 0
    finally:
        child.kill()
        child.wait(30)


def test_rss_sampler_of_this_process() -> None:
    with RssSampler(os.getpid()) as rss:
        pass
    assert rss.samples >= 2  # on entry and on exit
    assert rss.hwm_kib >= rss.peak_rss_kib > 0


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("1000000", 1_000_000), (" 7 ", 7)])
def test_positive_takes_whole_numbers_from_one(text: str, value: int) -> None:
    assert positive(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "", "1.5", "1e6", "1; DROP TABLE events", "٣x"])
def test_positive_refuses_the_rest(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive(text)
