"""The leak check every test runs under (tests/conftest.py, tests/leaks.py): it reports what a
test leaves running, names it, and lets through what the test's own fixtures end."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import confluent_kafka
import pytest

from tests import leaks

__all__ = ["pytest_plugins"]  # read by pytest, by name
pytest_plugins = ["pytester"]

NOWHERE = "127.0.0.1:1"  # nothing listens: the client keeps reconnecting

# The inner test run uses the real fixture; the threads its tests leave wait on this event,
# which the outer test sets once the report is in (so the outer test leaks nothing itself).
RELEASE = threading.Event()

CONFTEST = """
from tests.conftest import _no_leaks  # noqa: F401  (the fixture under test)
"""

INI = """
[pytest]
markers =
    known_leak(reason): a known leak
"""

TESTS = """
import threading
import time

import pytest

from tests.unit.test_leak_check import RELEASE


def test_leaks_a_thread():
    threading.Thread(target=RELEASE.wait, name="leaky-worker", daemon=True).start()


def test_joins_its_thread():
    thread = threading.Thread(target=time.sleep, args=(0.01,), name="joined")
    thread.start()
    thread.join()


def test_a_thread_finishing_within_the_grace_period():
    threading.Thread(target=time.sleep, args=(0.3,), name="finishing").start()


@pytest.fixture
def server_thread():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="fixture-server")
    thread.start()
    yield thread
    stop.set()
    thread.join()


def test_a_fixture_ends_its_thread_before_the_check(server_thread):
    assert server_thread.is_alive()


@pytest.mark.known_leak("waits for RELEASE")
def test_a_known_leak_is_a_warning():
    threading.Thread(target=RELEASE.wait, name="known-leaker", daemon=True).start()
"""


def test_the_fixture_fails_the_leaking_test_only(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_inner=TESTS)
    try:
        result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    finally:
        RELEASE.set()
    for thread in threading.enumerate():
        if thread.name in ("leaky-worker", "known-leaker", "finishing"):
            thread.join(5)
    result.assert_outcomes(passed=5, errors=1, warnings=1)
    out = result.stdout.str()
    assert "ERROR at teardown of test_leaks_a_thread" in out
    assert "thread 'leaky-worker' (Thread, target Event.wait in threading, daemon=True)" in out
    assert "known leak (waits for RELEASE)" in out
    assert "known-leaker" in out
    for fine in ("joined", "finishing", "fixture-server"):
        assert fine not in out


def test_a_client_left_open_is_named_and_a_closed_one_is_not() -> None:
    before = leaks.snapshot()
    producer = confluent_kafka.Producer({"bootstrap.servers": NOWHERE})
    consumer = confluent_kafka.Consumer({"bootstrap.servers": NOWHERE, "group.id": "g"})
    consumer.close()
    try:
        found = leaks.leaked_since(before, grace_s=0.2)
        report = leaks.describe(found)
        assert "1 librdkafka client(s) not closed (still referenced after gc.collect())" in report
        assert "rdk:main" in report
        assert "alive (closed ones too): Producer held by " in report  # a frame's: not named
        assert "Consumer" in report  # closed, not yet freed: listed, and not counted
    finally:
        producer.close()
    assert not leaks.leaked_since(before)


def test_a_client_only_dropped_is_reported_as_such() -> None:
    before = leaks.snapshot()
    holder: list[object] = [confluent_kafka.Producer({"bootstrap.servers": NOWHERE})]
    holder.append(holder)  # a cycle: only the collector frees it
    del holder
    gc.disable()  # no collection between the drop and the check
    try:
        report = leaks.describe(leaks.leaked_since(before, grace_s=0.2))
    finally:
        gc.enable()
    assert "dropped without close(): ended only by gc.collect()" in report
    assert "Producer held by list" in report
    assert not leaks.leaked_since(before)


def test_a_child_process_left_running_is_named() -> None:
    before = leaks.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # leaked"])
    try:
        report = leaks.describe(leaks.leaked_since(before, grace_s=0.2))
        assert f"process {child.pid} " in report
        assert "time.sleep(60)  # leaked" in report
    finally:
        child.kill()
        child.wait()
    assert not leaks.leaked_since(before)
