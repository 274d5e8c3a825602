"""The Splunk HEC and Datadog Logs sinks over real HTTP to the project's collector emulators on
127.0.0.1: what arrives, limits, acknowledgements, retries, outages, refusals and the
destination checks."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditstream.config.address_policy import AddressPolicy, parse_networks
from auditstream.config.destinations import DatadogLogsDestination, SplunkHecDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.check import check_destination
from auditstream.sinks.datadog_logs import (
    MARKER,
    MAX_ENTRY_BYTES,
    DatadogLogsSink,
    LogsWriteResult,
    SiteUrls,
)
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.retry import RetryPolicy, call
from auditstream.sinks.splunk_hec import SplunkHecSink
from devservices.datadog_receiver import DatadogReceiver
from devservices.splunk_hec_receiver import SplunkHecReceiver
from tests.factories import make_event

TOKEN = "7d4f0e2a-9c1b-4e55-8a0f-3b2c1d0e9f88"
KEY = "6a3c0f9e1b2d4c5e8f7a6b5c4d3e2f1a"
LOOPBACK = AddressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))


def make_batch(n: int, first_offset: int = 0, **event: Any) -> Batch:
    topic = "auditstream.dest.siem-it"
    return Batch(
        destination_id="siem-it",
        account_id="acme",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, first_offset + i, b"acme", b"") for i in range(max(n, 1))],
        events=[make_event(occurred_at=datetime.now(UTC), **event) for _ in range(n)],
    )


def ids(batch: Batch) -> list[str]:
    return [str(e["event_id"]) for e in batch.events]


def deliver(sink: Any, batch: Batch, waits: list[float] | None = None) -> Any:
    def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    return call(
        lambda: sink.write(batch),
        policy=RetryPolicy(attempts=4, base=0.01, max_wait=0.05),
        retryable=sink.is_retryable,
        sleep=sleep,
    )


# -- Splunk HEC ------------------------------------------------------------------------------------


@pytest.fixture
def hec() -> Iterator[SplunkHecReceiver]:
    with SplunkHecReceiver(TOKEN, indexes=("main", "audit")) as running:
        yield running


def splunk(url: str, **settings: Any) -> SplunkHecDestination:
    return SplunkHecDestination.model_validate(
        {"id": "siem-it", "url": url, "token": TOKEN, "timeout_s": 5, **settings}
    )


def hec_sink(url: str, **settings: Any) -> SplunkHecSink:
    return SplunkHecSink(splunk(url, **settings), address_policy=LOOPBACK)


@pytest.mark.parametrize("gzip", [True, False])
def test_splunk_events_arrive_in_order_with_their_metadata(
    hec: SplunkHecReceiver, gzip: bool
) -> None:
    sink = hec_sink(hec.url, gzip=gzip, index="audit", host="edge-1")
    first, second = make_batch(3), make_batch(2, first_offset=3)
    try:
        sink.write(first)
        sink.write(second)
    finally:
        sink.close()
    assert hec.event_ids() == ids(first) + ids(second)
    item = hec.events[0]
    assert (item["index"], item["host"], item["source"], item["sourcetype"]) == (
        "audit",
        "edge-1",
        "auditstream",
        "auditstream:activity",
    )
    occurred = first.events[0]["occurred_at"]
    assert item["time"] == pytest.approx(occurred.timestamp())
    assert item["event"]["actor"]["email"] == "ada@example.com"
    assert (hec.wire_bytes < hec.body_bytes) is gzip


def test_splunk_batch_larger_than_a_request_arrives_whole(hec: SplunkHecReceiver) -> None:
    hec.max_content_length = 100_000
    sink = hec_sink(hec.url, max_request_bytes=100_000)
    batch = make_batch(40, details={"blob": "x" * 10_000})
    try:
        result = sink.write(batch)
    finally:
        sink.close()
    assert result.deliveries == len(hec.deliveries) > 1
    assert hec.event_ids() == ids(batch)


def test_splunk_request_over_the_hec_limit_is_refused(hec: SplunkHecReceiver) -> None:
    hec.max_content_length = 70_000
    sink = hec_sink(hec.url, max_request_bytes=100_000)
    try:
        with pytest.raises(PermanentError, match="max_request_bytes") as info:
            sink.write(make_batch(10, details={"blob": "x" * 10_000}))
    finally:
        sink.close()
    assert info.value.cause == "http_413"


def test_splunk_busy_is_retried_with_its_retry_after(hec: SplunkHecReceiver) -> None:
    hec.fail_next(2, 503, {"text": "Server is busy", "code": 9}, retry_after=0.5)
    sink = hec_sink(hec.url)
    waits: list[float] = []
    batch = make_batch(5)
    try:
        deliver(sink, batch, waits)
    finally:
        sink.close()
    assert waits == [0.5, 0.5]
    assert hec.event_ids() == ids(batch)


def test_splunk_outage_then_recovery(hec: SplunkHecReceiver) -> None:
    sink = hec_sink(hec.url)
    batch = make_batch(4)
    try:
        sink.write(make_batch(1))
        hec.stop()
        with pytest.raises(TransientError) as info:
            sink.write(batch)
        assert info.value.cause in {"unreachable", "transport"}
        hec.restart()
        deliver(sink, batch)
    finally:
        sink.close()
    assert set(ids(batch)) <= hec.unique_event_ids()


def test_splunk_index_the_token_may_not_write_is_index_missing(hec: SplunkHecReceiver) -> None:
    sink = hec_sink(hec.url, index="secret")
    try:
        with pytest.raises(PermanentError, match="Incorrect index") as info:
            sink.write(make_batch(2))
    finally:
        sink.close()
    assert info.value.cause == "index_missing"
    assert hec.events == []


def test_splunk_ack_returns_only_once_indexed(hec: SplunkHecReceiver) -> None:
    hec.add_token(TOKEN, ack=True, indexes=("main",))
    hec.ack_delay_s = 0.4
    sink = hec_sink(hec.url, ack=True)
    batch = make_batch(3)
    started = datetime.now(UTC)
    try:
        sink.write(batch)
    finally:
        sink.close()
    assert datetime.now(UTC) - started >= timedelta(seconds=0.4)
    assert hec.event_ids() == ids(batch)


def test_splunk_ack_that_never_comes_is_retried_whole(hec: SplunkHecReceiver) -> None:
    hec.add_token(TOKEN, ack=True, indexes=("main",))
    hec.lose_acks = True
    sink = hec_sink(hec.url, ack=True, ack_timeout_s=0.5)
    batch = make_batch(3)
    try:
        with pytest.raises(TransientError, match="did not confirm") as info:
            sink.write(batch)
        assert info.value.cause == "timeout"
        hec.lose_acks = False
        sink.write(batch)
    finally:
        sink.close()
    # Indexed twice, as whole requests: at-least-once.
    assert hec.deliveries == [tuple(ids(batch))] * 2


def test_splunk_address_policy_applies_to_every_request(hec: SplunkHecReceiver) -> None:
    sink = SplunkHecSink(splunk(hec.url), address_policy=AddressPolicy())
    try:
        with pytest.raises(PermanentError) as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "address_refused"
    assert hec.requests == 0


def test_splunk_name_rebound_to_loopback_gets_no_request(hec: SplunkHecReceiver) -> None:
    public = AddressPolicy(resolver=lambda host, port: ["93.184.216.34"])
    sink = SplunkHecSink(splunk(f"http://localhost:{hec.port}"), address_policy=public)
    try:
        with pytest.raises(PermanentError, match="after connecting") as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "address_refused"
    assert hec.requests == 0


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("ok", None),
        ("bad token", "bad_credentials"),
        ("disabled token", "bad_credentials"),
        ("index missing", "index_missing"),
        ("ack off on the token", "invalid_config"),
        ("unreachable", "unreachable"),
        ("tls", "tls_failure"),
    ],
)
def test_splunk_check_names_one_cause(hec: SplunkHecReceiver, case: str, cause: str | None) -> None:
    settings: dict[str, Any] = {"index": "audit"}
    url = hec.url
    if case == "bad token":
        settings["token"] = "0000-unknown"
    if case == "disabled token":
        hec.add_token("0000-disabled", disabled=True)
        settings["token"] = "0000-disabled"
    if case == "index missing":
        settings["index"] = "secret"
    if case == "ack off on the token":
        settings["ack"] = True
    if case == "unreachable":
        hec.stop()
    if case == "tls":
        url = f"https://127.0.0.1:{hec.port}"
    result = check_destination(splunk(url, **settings), address_policy=LOOPBACK)
    assert result.ok is (cause is None), result.message
    assert result.cause == cause
    assert TOKEN not in result.message
    if cause is None:
        assert len(hec.check_events()) == 1
        assert hec.event_ids() == []


# -- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A private CA and a server certificate for 127.0.0.1 it signed."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditstream test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Certificates(folder / "ca.pem", server)


@pytest.mark.parametrize(
    ("settings", "cause"),
    [
        ({}, "tls_failure"),  # verification is on by default: a private CA is not trusted
        ({"ca_file": "CA"}, None),
        ({"verify_tls": False}, None),
    ],
)
def test_splunk_tls_verification_and_ca_bundle(
    certificates: Certificates, settings: dict[str, Any], cause: str | None
) -> None:
    if settings.get("ca_file") == "CA":
        settings = {"ca_file": str(certificates.ca_file)}
    with SplunkHecReceiver(TOKEN, tls=certificates.server) as receiver:
        assert receiver.url.startswith("https://")
        result = check_destination(splunk(receiver.url, **settings), address_policy=LOOPBACK)
        if cause is None:
            sink = hec_sink(receiver.url, **settings)
            try:
                sink.write(make_batch(2))
            finally:
                sink.close()
            assert len(receiver.unique_event_ids()) == 2
    assert result.cause == cause, result.message
    if cause == "tls_failure":
        assert "certificate" in result.message


def test_datadog_tls_with_a_ca_bundle(certificates: Certificates) -> None:
    with DatadogReceiver([KEY], tls=certificates.server) as receiver:
        destination = datadog(receiver.url, ca_file=str(certificates.ca_file))
        assert check_destination(destination, address_policy=LOOPBACK).ok
        refused = check_destination(datadog(receiver.url), address_policy=LOOPBACK)
    assert refused.cause == "tls_failure"


# -- Datadog Logs ----------------------------------------------------------------------------------


@pytest.fixture
def intake() -> Iterator[DatadogReceiver]:
    with DatadogReceiver([KEY]) as running:
        yield running


def datadog(endpoint: str | None, **settings: Any) -> DatadogLogsDestination:
    base = {"id": "siem-it", "api_key": KEY, "timeout_s": 5, "tags": "env:test"}
    if endpoint is not None:
        base["endpoint"] = endpoint
    return DatadogLogsDestination.model_validate({**base, **settings})


def dd_sink(url: str, **settings: Any) -> DatadogLogsSink:
    return DatadogLogsSink(datadog(url, **settings), address_policy=LOOPBACK)


@pytest.mark.parametrize("gzip", [True, False])
def test_datadog_logs_arrive_with_tags_and_attributes(intake: DatadogReceiver, gzip: bool) -> None:
    sink = dd_sink(intake.url, gzip=gzip, hostname="edge-1")
    batch = make_batch(3, category="team")
    try:
        sink.write(batch)
    finally:
        sink.close()
    assert intake.event_ids() == ids(batch)
    log = intake.logs[0]
    assert log["ddtags"] == "account_id:acme,category:team,env:test"
    assert (log["ddsource"], log["service"], log["hostname"]) == (
        "auditstream",
        "auditstream",
        "edge-1",
    )
    assert log["actor"]["email"] == "ada@example.com"
    assert (intake.wire_bytes < intake.body_bytes) is gzip


def test_datadog_batch_over_the_intake_limits_takes_several_requests(
    intake: DatadogReceiver,
) -> None:
    sink = dd_sink(intake.url)
    batch = make_batch(2_500)
    try:
        result = sink.write(batch)
    finally:
        sink.close()
    assert result.deliveries == 3
    assert [len(d) for d in intake.deliveries] == [1000, 1000, 500]
    assert intake.event_ids() == ids(batch)


def test_datadog_large_and_late_events_are_delivered_and_named(intake: DatadogReceiver) -> None:
    sink = dd_sink(intake.url)
    batch = make_batch(3)
    batch.events[0]["details"] = {"blob": "y" * (MAX_ENTRY_BYTES + 1)}
    batch.events[1]["occurred_at"] = datetime.now(UTC) - timedelta(hours=30)
    try:
        result = sink.write(batch)
    finally:
        sink.close()
    assert isinstance(result, LogsWriteResult)
    assert result.truncated_event_ids == (ids(batch)[0],)
    assert result.late_event_ids == (ids(batch)[1],)
    # Nothing dropped, nothing cut again by the intake.
    assert intake.event_ids() == ids(batch)
    assert (intake.dropped_late, intake.intake_truncated) == (0, 0)
    truncated, late, _ = intake.logs
    assert truncated[MARKER]["truncated"] is True
    assert late[MARKER] == {"late": True}


def test_datadog_throttling_is_retried_with_its_retry_after(intake: DatadogReceiver) -> None:
    intake.fail_next(1, 429, {"errors": ["Too many requests"]}, retry_after=1.5)
    sink = dd_sink(intake.url)
    waits: list[float] = []
    batch = make_batch(2)
    try:
        deliver(sink, batch, waits)
    finally:
        sink.close()
    assert waits == [1.5]
    assert intake.event_ids() == ids(batch)


def test_datadog_failure_of_one_request_resends_the_whole_batch(
    intake: DatadogReceiver,
) -> None:
    sink = dd_sink(intake.url)
    batch = make_batch(2_500)

    original = intake.answer
    calls = {"n": 0}

    def second_fails(request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            from devservices.collector_server import Answer

            return Answer(500, {"errors": ["Internal"]})
        return original(request)

    intake.answer = second_fails  # type: ignore[method-assign]
    try:
        deliver(sink, batch)
    finally:
        sink.close()
    # The first request went twice (whole-batch retry), then all three.
    assert [len(d) for d in intake.deliveries] == [1000, 1000, 1000, 500]
    assert intake.deliveries[0] == intake.deliveries[1]
    assert intake.unique_event_ids() == set(ids(batch))


def test_datadog_outage_then_recovery(intake: DatadogReceiver) -> None:
    sink = dd_sink(intake.url)
    batch = make_batch(4)
    try:
        sink.write(make_batch(1))
        intake.stop()
        with pytest.raises(TransientError):
            sink.write(batch)
        intake.restart()
        deliver(sink, batch)
    finally:
        sink.close()
    assert set(ids(batch)) <= intake.unique_event_ids()


def test_datadog_refused_key_is_bad_credentials(intake: DatadogReceiver) -> None:
    sink = dd_sink(intake.url, api_key="ffffffffffffffffffffffffffffffff")
    try:
        with pytest.raises(PermanentError) as info:
            sink.write(make_batch(1))
    finally:
        sink.close()
    assert info.value.cause == "bad_credentials"


@pytest.fixture
def sites() -> Iterator[dict[str, DatadogReceiver]]:
    """Three Datadog sites, each a receiver with its own key."""
    keys = {"datadoghq.com": KEY, "datadoghq.eu": "e" * 32, "us5.datadoghq.com": "5" * 32}
    receivers = {site: DatadogReceiver([key]).start() for site, key in keys.items()}
    try:
        yield receivers
    finally:
        for receiver in receivers.values():
            receiver.stop()


def site_sink(sites: dict[str, DatadogReceiver], **settings: Any) -> DatadogLogsSink:
    def urls(site: str) -> SiteUrls:
        receiver = sites.get(site)
        # Datadog's other sites are "down" here: nothing listens on port 9.
        url = receiver.url if receiver is not None else "http://127.0.0.1:9"
        return SiteUrls(url, url)

    return DatadogLogsSink(datadog(None, **settings), address_policy=LOOPBACK, urls_of_site=urls)


@pytest.mark.parametrize(
    ("site", "key", "cause"),
    [
        ("datadoghq.com", KEY, None),
        ("datadoghq.com", "e" * 32, "region_mismatch"),
        ("us5.datadoghq.com", KEY, "region_mismatch"),
        ("datadoghq.com", "0" * 32, "bad_credentials"),
    ],
)
def test_datadog_check_names_the_site_of_a_key(
    sites: dict[str, DatadogReceiver], site: str, key: str, cause: str | None
) -> None:
    sink = site_sink(sites, site=site, api_key=key)
    try:
        result = sink.probe()
    finally:
        sink.close()
    assert result.ok is (cause is None), result.message
    assert result.cause == cause
    assert key not in result.message
    if cause == "region_mismatch":
        right = next(s for s, r in sites.items() if key in r.api_keys)
        assert f"site to {right}" in result.message
    if cause is None:
        assert len(sites[site].check_logs()) == 1


@pytest.mark.parametrize(
    ("case", "cause"), [("ok", None), ("unreachable", "unreachable"), ("tls", "tls_failure")]
)
def test_datadog_check_through_the_registry(
    intake: DatadogReceiver, case: str, cause: str | None
) -> None:
    url = intake.url
    if case == "unreachable":
        intake.stop()
    if case == "tls":
        url = f"https://127.0.0.1:{intake.port}"
    result = check_destination(datadog(url), address_policy=LOOPBACK)
    assert result.ok is (cause is None), result.message
    assert result.cause == cause
