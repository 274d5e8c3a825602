"""The address policy at connection time, in every sink that connects to a tenant-chosen host: a
name that was public when saved and resolves elsewhere now gets no connection."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditstream.config.address_policy import AddressPolicy, parse_networks
from auditstream.config.destinations import (
    AzureBlobDestination,
    GcsDestination,
    S3Destination,
    WebhookDestination,
)
from auditstream.pipeline.log import Record
from auditstream.sinks import address_guard
from auditstream.sinks.azure_blob import AzureBlobSink
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.gcs import GcsSink
from auditstream.sinks.s3 import S3Sink
from auditstream.sinks.webhook import WebhookSink
from tests.factories import make_event
from tests.fake_resolver import fake_resolver

CLOSED_PORT = 9  # discard: nothing listens there on a test machine
NAMES = {
    "store.example.com": ["127.0.0.1"],  # resolves to loopback now
    "meta.example.com": ["169.254.169.254"],
    # "public" to the check; the operating system resolves it to loopback for the connection
    "localhost": ["93.184.216.34"],
}
STRICT = AddressPolicy(resolver=fake_resolver(NAMES))
LOOPBACK_ALLOWED = AddressPolicy(
    allowed_networks=parse_networks(["127.0.0.1/32"]), resolver=fake_resolver(NAMES)
)


def _batch(destination_id: str = "d") -> Batch:
    batch = Batch(destination_id, "acme", f"auditstream.dest.{destination_id}", 0)
    batch.records.append(Record(batch.topic, 0, 0, b"acme", b""))
    batch.events.append(make_event())
    return batch


def _refused(exc: DeliveryError, *, literal: bool = False) -> None:
    """Refused before connecting; a resolved address is never shown (a configured literal
    address may be, as the host is)."""
    assert exc.cause == "address_refused"
    if not literal:
        assert "127.0.0.1" not in str(exc)
        assert "169.254" not in str(exc)


# -- the guard itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("https://store.example.com/x", "address_refused"),
        ("http://127.0.0.1:10000/acct", "address_refused"),
        ("https://meta.example.com/", "address_refused"),
        ("https://[::1]/", "address_refused"),
        ("https://nowhere.example.com/", "unreachable"),
        ("/relative/only", "address_refused"),
    ],
)
def test_the_guard_refuses(url: str, cause: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        address_guard.check_url(STRICT, url, target="the store")
    assert caught.value.cause == cause


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://store.example.com/x", ("store.example.com", 443)),
        ("http://Store.Example.com:8080/x?y=1", ("store.example.com", 8080)),
        ("https://[::1]:8443/x", ("::1", 8443)),
        ("https://127.0.0.1\\@good.example.com/", None),  # urllib3: 127.0.0.1; Python: good
        ("https://good.example.com\\@127.0.0.1/", None),
        ("http://good.example.com\t.evil/", None),
        ("ftp://store.example.com/", None),
        ("https:///nohost", None),
        ("https://store.example.com:99999/", None),
    ],
)
def test_the_request_host_is_read_as_the_connection_layer_reads_it(
    url: str, expected: tuple[str, int] | None
) -> None:
    assert address_guard.request_host(url) == expected


def test_an_ambiguous_url_is_refused() -> None:
    with pytest.raises(PermanentError) as caught:
        address_guard.check_url(
            LOOPBACK_ALLOWED, "https://127.0.0.1\\@good.example.com/", target="t"
        )
    assert caught.value.cause == "address_refused"


def test_the_guard_without_a_policy_and_with_an_allowed_network() -> None:
    address_guard.check_url(None, "http://127.0.0.1/x", target="t")
    address_guard.check_url(LOOPBACK_ALLOWED, "http://127.0.0.1:10000/x", target="t")
    with pytest.raises(PermanentError):
        address_guard.check_url(LOOPBACK_ALLOWED, "http://169.254.169.254/", target="t")


# -- webhook: the peer address of each connection ------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Receiver.received.append(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[int]:
    _Receiver.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _webhook(url: str, policy: AddressPolicy | None) -> WebhookSink:
    destination = WebhookDestination.model_validate({"id": "h", "url": url, "secret": "s"})
    return WebhookSink(destination, address_policy=policy)


def test_a_name_rebound_to_loopback_between_check_and_connect_gets_nothing(
    receiver: int,
) -> None:
    sink = _webhook(f"http://localhost:{receiver}/in", STRICT)
    try:
        with pytest.raises(PermanentError) as caught:
            sink.write(_batch("h"))
    finally:
        sink.close()
    _refused(caught.value)
    assert "after connecting" in str(caught.value)
    assert _Receiver.received == []
    result = _webhook(f"http://localhost:{receiver}/in", STRICT).probe()
    assert result.cause == "address_refused"
    assert _Receiver.received == []


def test_an_allowed_peer_is_posted(receiver: int) -> None:
    sink = _webhook(f"http://127.0.0.1:{receiver}/in", LOOPBACK_ALLOWED)
    try:
        sink.write(_batch("h"))
    finally:
        sink.close()
    assert len(_Receiver.received) == 1


def test_without_a_policy_nothing_is_checked(receiver: int) -> None:
    sink = _webhook(f"http://localhost:{receiver}/in", None)
    try:
        sink.write(_batch("h"))
    finally:
        sink.close()
    assert len(_Receiver.received) == 1


# -- object stores: every request's host, right before it is sent --------------------------------


def _s3(endpoint: str, policy: AddressPolicy | None, **kw: Any) -> S3Sink:
    destination = S3Destination.model_validate(
        {
            "id": "s",
            "bucket": "acme-audit",
            "endpoint_url": endpoint,
            "access_key_id": "AKIA",
            "secret_access_key": "sk",
            **kw,
        }
    )
    return S3Sink(destination, address_policy=policy)


def _azure(url: str, policy: AddressPolicy | None) -> AzureBlobSink:
    destination = AzureBlobDestination.model_validate(
        {"id": "a", "container": "audit", "account_url": url, "sas_token": "sv=1"}
    )
    return AzureBlobSink(destination, address_policy=policy)


def _gcs(endpoint: str, policy: AddressPolicy | None, **kw: Any) -> GcsSink:
    settings: dict[str, Any] = {"id": "g", "bucket": "acme-audit", "endpoint": endpoint}
    settings.update(kw or {"anonymous": True})
    return GcsSink(GcsDestination.model_validate(settings), address_policy=policy)


def _key_file(token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "w@my-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


SinkMaker = Callable[[str, AddressPolicy | None], Any]
SINKS: dict[str, SinkMaker] = {
    "s3": lambda url, policy: _s3(url, policy),
    "s3-multipart": lambda url, policy: _s3(url, policy, multipart_threshold_bytes=5 * 2**20),
    "azure_blob": lambda url, policy: _azure(url + "/acct", policy),
    "gcs": lambda url, policy: _gcs(url, policy),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", sorted(SINKS))
@pytest.mark.parametrize("host", ["store.example.com", "127.0.0.1", "meta.example.com"])
def test_an_object_store_on_a_refused_host_gets_no_request(kind: str, host: str) -> None:
    sink = SINKS[kind](f"http://{host}:{CLOSED_PORT}", STRICT)
    try:
        if kind == "s3-multipart":
            with pytest.raises(PermanentError) as caught:
                sink._put("k", b"x" * (5 * 2**20 + 1), content_type="a/b", content_encoding=None)
        else:
            with pytest.raises(PermanentError) as caught:
                sink.write(_batch())
        _refused(caught.value, literal=host == "127.0.0.1")
        result = sink.probe()
        assert result.ok is False
        assert result.cause == "address_refused"
    finally:
        sink.close()


@pytest.mark.parametrize("kind", sorted(SINKS))
def test_an_allowed_host_is_connected_to(kind: str) -> None:
    port = _free_port()  # nothing listens: the attempt to connect proves the check passed
    sink = SINKS[kind](f"http://127.0.0.1:{port}", LOOPBACK_ALLOWED)
    try:
        with pytest.raises(TransientError) as caught:
            sink.write(_batch())
        assert caught.value.cause == "unreachable"
    finally:
        sink.close()


def test_a_tenant_key_files_token_request_is_checked_too() -> None:
    # the storage endpoint is allowed; the key file's token endpoint is not
    sink = _gcs(
        f"http://127.0.0.1:{_free_port()}",
        LOOPBACK_ALLOWED,
        service_account_json=_key_file("https://meta.example.com/token"),
    )
    try:
        with pytest.raises(PermanentError) as caught:
            sink.write(_batch())
        _refused(caught.value, literal=True)  # the configured storage endpoint is named
        assert "meta.example.com" in str(caught.value)
    finally:
        sink.close()


def test_the_factory_hands_the_policy_to_every_network_sink() -> None:
    for sink in (
        build_sink(_s3("http://127.0.0.1:9", None)._destination, address_policy=STRICT),
        build_sink(
            AzureBlobDestination.model_validate(
                {
                    "id": "a",
                    "container": "audit",
                    "account_url": "http://127.0.0.1:9/acct",
                    "sas_token": "sv=1",
                }
            ),
            address_policy=STRICT,
        ),
        build_sink(
            GcsDestination.model_validate(
                {
                    "id": "g",
                    "bucket": "acme-audit",
                    "endpoint": "http://127.0.0.1:9",
                    "anonymous": True,
                }
            ),
            address_policy=STRICT,
        ),
    ):
        try:
            with pytest.raises(PermanentError) as caught:
                sink.write(_batch())
            _refused(caught.value, literal=True)
        finally:
            sink.close()
