"""Shared fixtures: a real Kafka broker per test that asks for one, and the embedded log.

Every test also runs under :func:`_no_leaks`: a test that leaves a thread, a librdkafka client
or a process running after its fixtures are torn down fails, naming what it left.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from devservices.kafka import KafkaBroker
from tests import leaks
from tests.postgres_fixtures import postgres_server  # noqa: F401

__all__ = ["pytest_fixture_setup"]  # a hook: pytest calls it by name


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Note what a module- or session-scoped fixture starts while it is set up: it runs for
    the fixture's lifetime, whichever test asked for the fixture first."""
    if fixturedef.scope == "function":
        return (yield)
    before = leaks.snapshot()
    try:
        return (yield)
    finally:
        key = id(fixturedef)
        leaks.wider_fixture_started(key, leaks.snapshot() - before)
        fixturedef.addfinalizer(lambda: leaks.wider_fixture_ended(key))


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads, librdkafka clients or processes running.

    An autouse function fixture of the root conftest is set up before, and torn down after,
    every other function-scoped fixture of the test: the check sees what remains once they
    are all gone. Module- and session-scoped fixtures start before it (what they run is part
    of the snapshot) and end after it. ``@pytest.mark.known_leak("why")`` turns the failure
    into a warning for a leak whose cause is known and not yet fixed."""
    before = leaks.snapshot()
    yield
    found = leaks.leaked_since(before | leaks.owned_by_wider_fixtures())
    if not found:
        return
    report = f"{request.node.nodeid} left running:\n{leaks.describe(found)}"
    known = request.node.get_closest_marker("known_leak")
    if known is not None:
        reason = known.args[0] if known.args else ""
        request.node.warn(pytest.PytestWarning(f"known leak ({reason}): {report}"))
        return
    pytest.fail(report, pytrace=False)


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A fresh single-node broker on 127.0.0.1 (about 3 s to start): tests share no topics."""
    with KafkaBroker.start(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture
def embedded_log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    yield log
    log.close()


@pytest.fixture(params=["embedded", "kafka"])
def any_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """The test runs once on each backend: the embedded log and a real Kafka broker."""
    if request.param == "embedded":
        log: Log = EmbeddedLog(tmp_path / "log.sqlite")
        yield log
        log.close()
        return
    with KafkaBroker.start(tmp_path / "kafka") as broker:
        log = KafkaLog(broker.bootstrap)
        yield log
        log.close()
