"""The Azure Monitor Logs sink over real HTTPS to the project's emulator on 127.0.0.1 (Entra ID's
token endpoint through azure-identity, and the Logs Ingestion API): delivery, splitting, a
refused secret, throttling, refusals, outages, TLS and a token endpoint that hangs.

Every name resolved during these tests is 127.0.0.1: a guard refuses any other (Microsoft's
authority included) and the test fails if one was asked for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from auditstream.config.address_policy import AddressPolicy, parse_networks
from auditstream.config.destinations import AzureMonitorLogsDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.azure_monitor_logs import (
    AUTHORITY_CA_FILE_ENV,
    AUTHORITY_HOST_ENV,
    TRUNCATED_COLUMN,
    Authority,
    AzureMonitorLogsSink,
)
from auditstream.sinks.batch import Batch
from auditstream.sinks.check import check_destination
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from devservices.azure_monitor_receiver import AzureMonitorReceiver, LocalTls, local_tls
from tests.factories import make_event

TENANT = "5d1f0c3e-7a2b-4c8d-9e6f-0a1b2c3d4e5f"
CLIENT = "0f9e8d7c-6b5a-4d3c-8b2a-1f0e9d8c7b6a"
SECRET = "Qx8~s3cret.value-for-tests"
DCR = "dcr-00112233445566778899aabbccddeeff"
STREAM = "Custom-AuditStream_CL"
LOOPBACK = AddressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuses to resolve any name but 127.0.0.1 and checks afterwards that none was asked."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        if host != "127.0.0.1":
            raise socket.gaierror(f"tests resolve 127.0.0.1 only, not {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield asked
    assert set(asked) <= {"127.0.0.1"}, asked
    assert not any("microsoftonline" in host for host in asked)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return local_tls(tmp_path_factory.mktemp("azure-tls"))


@pytest.fixture
def monitor(tls: LocalTls) -> Iterator[AzureMonitorReceiver]:
    with AzureMonitorReceiver(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=SECRET,
        dcr_id=DCR,
        streams=(STREAM,),
        tls=tls.server,
    ) as running:
        yield running


def destination(
    monitor: AzureMonitorReceiver, tls: LocalTls, **overrides: Any
) -> AzureMonitorLogsDestination:
    return AzureMonitorLogsDestination.model_validate(
        {
            "id": "az-it",
            "endpoint": monitor.base_url,
            "dcr_immutable_id": DCR,
            "stream_name": STREAM,
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "ca_file": str(tls.ca_file),
            **overrides,
        }
    )


def sink(
    monitor: AzureMonitorReceiver,
    tls: LocalTls,
    *,
    authority: Authority | None = None,
    **overrides: Any,
) -> AzureMonitorLogsSink:
    return AzureMonitorLogsSink(
        destination(monitor, tls, **overrides),
        address_policy=LOOPBACK,
        authority=authority or Authority(f"127.0.0.1:{monitor.port}", str(tls.ca_file)),
    )


def make_batch(n: int, first_offset: int = 0, **event: Any) -> Batch:
    topic = "auditstream.dest.az-it"
    return Batch(
        destination_id="az-it",
        account_id="acme",
        topic=topic,
        partition=0,
        records=[Record(topic, 0, first_offset + i, b"acme", b"") for i in range(max(n, 1))],
        events=[make_event(occurred_at=datetime.now(UTC), **event) for _ in range(n)],
    )


def ids(batch: Batch) -> list[str]:
    return [str(e["event_id"]) for e in batch.events]


def test_events_arrive_as_rows_with_one_token_for_many_writes(
    monitor: AzureMonitorReceiver, tls: LocalTls
) -> None:
    writer = sink(monitor, tls)
    first, second = make_batch(5), make_batch(3, first_offset=5)
    writer.write(first)
    writer.write(second)
    writer.close()
    assert monitor.event_ids() == ids(first) + ids(second)
    row = monitor.rows[0]
    assert row["TimeGenerated"] == first.events[0]["occurred_at"].isoformat().replace("+00:00", "Z")
    assert row["account_id"] == "acme"
    assert monitor.token_requests == 1  # the credential caches the token
    assert monitor.discovery_requests == 1


def test_a_batch_over_one_megabyte_arrives_whole_in_several_requests(
    monitor: AzureMonitorReceiver, tls: LocalTls
) -> None:
    batch = make_batch(80, details={"blob": "z" * 30_000})
    batch.events[7]["details"] = {"blob": "w" * 2_000_000}  # alone over the limit
    result = sink(monitor, tls, gzip=False).write(batch)
    assert result.deliveries == len(monitor.deliveries) > 2
    kept = monitor.event_ids()
    expected = ids(batch)
    assert kept == ["None" if n == 7 else i for n, i in enumerate(expected)]  # the marked row
    (marked,) = [r for r in monitor.rows if TRUNCATED_COLUMN in r]
    assert marked[TRUNCATED_COLUMN]["event_id"] == expected[7]
    assert max(len(d) for d in monitor.deliveries) < len(expected)


def test_ocsf_rows(monitor: AzureMonitorReceiver, tls: LocalTls) -> None:
    sink(monitor, tls, schema="ocsf").write(make_batch(2))
    assert [r["class_uid"] for r in monitor.rows] == [3002, 3002]
    assert all("TimeGenerated" in r for r in monitor.rows)


def test_a_wrong_secret_is_bad_credentials(monitor: AzureMonitorReceiver, tls: LocalTls) -> None:
    writer = sink(monitor, tls, client_secret="not-the-secret")
    with pytest.raises(PermanentError) as refused:
        writer.write(make_batch(1))
    assert refused.value.cause == "bad_credentials"
    assert "AADSTS7000215" in str(refused.value)
    assert "not-the-secret" not in str(refused.value)
    assert monitor.rows == []
    result = writer.probe()
    assert (result.ok, result.cause) == (False, "bad_credentials")


def test_an_unknown_tenant_is_bad_credentials(monitor: AzureMonitorReceiver, tls: LocalTls) -> None:
    result = sink(monitor, tls, tenant_id="contoso.onmicrosoft.com").probe()
    assert (result.ok, result.cause) == (False, "bad_credentials")


def test_throttling_is_transient_with_the_retry_after_asked_for(
    monitor: AzureMonitorReceiver, tls: LocalTls
) -> None:
    writer = sink(monitor, tls)
    writer.write(make_batch(1))  # the token is cached from here on
    monitor.fail_next(1, 429, {"error": {"code": "TooManyRequests"}}, retry_after=7)
    batch = make_batch(2, first_offset=1)
    with pytest.raises(TransientError) as throttled:
        writer.write(batch)
    assert throttled.value.retry_after == 7
    assert writer.is_retryable(throttled.value)
    writer.write(batch)  # the retry goes through
    assert monitor.event_ids()[-2:] == ids(batch)


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("works", None),
        ("no_role", "access_denied"),
        ("wrong_dcr", "dcr_missing"),
        ("wrong_stream", "dcr_missing"),
        ("wrong_client", "bad_credentials"),
        ("unreachable", "unreachable"),
        ("untrusted_endpoint", "tls_failure"),
        ("untrusted_authority", "tls_failure"),
        ("throttled_token", "throttled"),
    ],
)
def test_the_destination_check_names_one_cause(
    monitor: AzureMonitorReceiver, tls: LocalTls, case: str, cause: str | None
) -> None:
    overrides: dict[str, Any] = {}
    authority = None
    if case == "no_role":
        monitor.publisher = False
    if case == "wrong_dcr":
        overrides["dcr_immutable_id"] = "dcr-" + "f" * 32
    if case == "wrong_stream":
        overrides["stream_name"] = "Custom-Other_CL"
    if case == "wrong_client":
        overrides["client_id"] = "00000000-0000-0000-0000-000000000009"
    if case == "untrusted_endpoint":
        overrides["ca_file"] = None
    if case == "untrusted_authority":
        authority = Authority(f"127.0.0.1:{monitor.port}")
    if case == "throttled_token":
        monitor.fail_next(5, 429, {"error": "temporarily_unavailable"}, retry_after=3)
    checked = sink(monitor, tls, authority=authority, **overrides)
    if case == "unreachable":
        monitor.stop()
    result = checked.probe()
    checked.close()
    assert result.ok is (cause is None), result.message
    assert result.cause == cause
    assert SECRET not in result.message
    if cause is None:
        assert len(monitor.check_rows()) == 1
        assert monitor.event_ids() == []


def test_a_discovery_document_cannot_send_the_secret_elsewhere(
    monitor: AzureMonitorReceiver, tls: LocalTls
) -> None:
    monitor.token_endpoint = f"https://login.attacker.example/{TENANT}/oauth2/v2.0/token"
    result = sink(monitor, tls).probe()
    assert (result.ok, result.cause) == (False, "invalid_config")
    assert "login.attacker.example" in result.message
    assert monitor.token_requests == 0  # the guard fixture: the name was never resolved


def test_a_token_endpoint_that_hangs_times_out(
    monitor: AzureMonitorReceiver, tls: LocalTls
) -> None:
    monitor.set_delay(1.5)
    writer = sink(monitor, tls, timeout_s=0.2)
    with pytest.raises(DeliveryError) as hung:
        writer.write(make_batch(1))
    monitor.set_delay(0)
    writer.close()
    for thread in threading.enumerate():  # the emulator's answer still sleeping
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=10)
    assert hung.value.cause == "timeout"
    assert writer.is_retryable(hung.value)
    assert monitor.rows == []


def test_the_operators_authority_comes_from_the_environment(
    monitor: AzureMonitorReceiver, tls: LocalTls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTHORITY_HOST_ENV, f"https://127.0.0.1:{monitor.port}")
    monkeypatch.setenv(AUTHORITY_CA_FILE_ENV, str(tls.ca_file))
    result = check_destination(destination(monitor, tls), address_policy=LOOPBACK)
    assert result.ok, result.message
    assert monitor.token_requests == 1


def test_without_the_operators_authority_no_token_request_leaves_the_machine(
    monitor: AzureMonitorReceiver,
    tls: LocalTls,
    monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[str],
) -> None:
    monkeypatch.delenv(AUTHORITY_HOST_ENV, raising=False)
    result = check_destination(destination(monitor, tls), address_policy=LOOPBACK)
    assert (result.ok, result.cause) == (False, "unreachable")
    assert "login.microsoftonline.com" in result.message
    # The guard refused the name: nothing was sent, and the guard's record is cleared so the
    # fixture's own check (no name but 127.0.0.1) holds for the rest.
    assert loopback_only == ["login.microsoftonline.com"]
    loopback_only.clear()
    assert monitor.token_requests == 0


def test_a_large_gzip_batch_arrives_whole(monitor: AzureMonitorReceiver, tls: LocalTls) -> None:
    batch = make_batch(40, details={"blob": "q" * 50_000})
    sink(monitor, tls).write(batch)
    assert monitor.event_ids() == ids(batch)
