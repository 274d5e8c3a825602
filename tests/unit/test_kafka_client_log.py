"""librdkafka's log lines reach Python logging once per window, with a count of repeats."""

from __future__ import annotations

import logging

import pytest

from auditstream.pipeline.kafka_client_log import (
    KafkaClientLog,
    LastProblem,
    Repeats,
    brief,
    repeat_key,
)

REFUSED_TEXT = (
    "[thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: "
    "Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)"
)
"""What librdkafka logs, facility and client name apart, while a broker refuses connections."""
REFUSED = f"FAIL [rdkafka#producer-1] {REFUSED_TEXT}"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (REFUSED, REFUSED.replace("after 0ms", "after 13ms"), True),
        (REFUSED, REFUSED.replace("producer-1", "consumer-7"), True),
        (
            REFUSED,
            REFUSED.replace("CONNECT)", "CONNECT, 29 identical error(s) suppressed)"),
            True,
        ),
        (REFUSED, REFUSED.replace("127.0.0.1:9092", "127.0.0.1:9093"), False),
        (REFUSED, REFUSED.replace("Connection refused", "Connection reset"), False),
        ("REQTMOUT [rdkafka#producer-1] [thrd:x]: timed out", REFUSED, False),
    ],
)
def test_repeat_key_ignores_timings_and_client_names(a: str, b: str, same: bool) -> None:
    assert (repeat_key(a) == repeat_key(b)) is same


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (REFUSED, "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"),
        (
            "FAIL [rdkafka#producer-2] [thrd:kafka-1:9092/bootstrap]: kafka-1:9092/bootstrap: "
            "Failed to resolve 'kafka-1:9092': Name or service not known (after 1ms in state "
            "CONNECT, 3 identical error(s) suppressed)",
            "Failed to resolve 'kafka-1:9092': Name or service not known",
        ),
        ("something else entirely", "something else entirely"),
    ],
)
def test_brief_keeps_the_message_only(line: str, message: str) -> None:
    assert brief(line) == message


# (seconds since start, key) -> what admit answers: None = held back, n = logged, n held before
ADMIT_CASES = [
    ("first of a kind is logged", [(0, "a")], [0]),
    ("repeats within the window are held", [(0, "a"), (1, "a"), (29.9, "a")], [0, None, None]),
    (
        "after the window with the count",
        [(0, "a"), (1, "a"), (2, "a"), (30, "a")],
        [0, None, None, 2],
    ),
    ("after the window, nothing held", [(0, "a"), (31, "a")], [0, 0]),
    (
        "kinds are counted apart",
        [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "b")],
        [0, 0, None, None, None],
    ),
    (
        "the count restarts",
        [(0, "a"), (1, "a"), (30, "a"), (31, "a"), (60, "a")],
        [0, None, 1, None, 1],
    ),
]


@pytest.mark.parametrize(
    ("calls", "expected"), [c[1:] for c in ADMIT_CASES], ids=[c[0] for c in ADMIT_CASES]
)
def test_repeats_admit(calls: list[tuple[float, str]], expected: list[int | None]) -> None:
    repeats = Repeats(window_s=30.0)
    assert [repeats.admit(key, now) for now, key in calls] == expected


def test_zero_window_logs_everything() -> None:
    repeats = Repeats(window_s=0.0)
    assert [repeats.admit("a", 0.0) for _ in range(3)] == [0, 0, 0]


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        Repeats(window_s=-1.0)


def test_a_flood_of_kinds_forgets_only_kinds_past_their_window() -> None:
    repeats = Repeats(window_s=10.0)
    for i in range(1000):
        repeats.admit(f"old-{i}", 0.0)
    repeats.admit("recent", 15.0)
    assert repeats.admit("new", 20.0) == 0  # past the limit: the old kinds are forgotten
    assert repeats.admit("recent", 20.0) is None  # still within its window: remembered


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_client_log_passes_one_line_per_window_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    target = logging.getLogger("test.kafka")
    client_log = KafkaClientLog(target, Repeats(30.0), clock)
    caplog.set_level(logging.DEBUG, logger="test.kafka")
    for i in range(600):  # 20 a second for 30 s, as a client facing a closed port logs
        clock.now = i / 20
        client_log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", REFUSED_TEXT)
    clock.now = 30.0
    client_log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", REFUSED_TEXT)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (logging.ERROR, REFUSED),
        (logging.ERROR, f"{REFUSED} (599 more like it in the last 30 s)"),
    ]


def test_client_log_skips_lines_below_the_target_level(caplog: pytest.LogCaptureFixture) -> None:
    repeats = Repeats()
    client_log = KafkaClientLog(logging.getLogger("test.kafka.quiet"), repeats, Clock())
    caplog.set_level(logging.WARNING, logger="test.kafka.quiet")
    client_log.log(logging.DEBUG, "%s [%s] %s", "BROKER", "rdkafka#consumer-1", "chatter")
    assert not caplog.records
    assert repeats.admit(repeat_key("BROKER [rdkafka#consumer-1] chatter"), 0.0) == 0


def test_client_log_never_raises_on_a_bad_format(caplog: pytest.LogCaptureFixture) -> None:
    client_log = KafkaClientLog(logging.getLogger("test.kafka.bad"), Repeats(), Clock())
    caplog.set_level(logging.INFO, logger="test.kafka.bad")
    client_log.log(logging.INFO, "%s %s", "only one")
    assert [r.getMessage() for r in caplog.records] == ["%s %s only one"]


def test_last_problem_keeps_the_last_warning_or_worse() -> None:
    problem = LastProblem()
    problem.log(logging.ERROR, "%s", "first")
    problem.log(logging.WARNING, "%s", "second")
    problem.log(logging.INFO, "%s", "not a problem")
    assert problem.line == "second"
