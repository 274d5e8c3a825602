"""The S3, GCS and Azure Blob sinks against real local emulators, read back with each vendor's
own SDK: key layout, NDJSON+gzip and Avro bodies, overwrite on replay, multipart / resumable /
block uploads, and the destination check (ok, bucket_missing, bad_credentials, unreachable).

moto_server (S3), fake-gcs-server (GCS) and Azurite (Azure Blob) run on 127.0.0.1, one of
each for the module (see ``devservices``); every test uses its own bucket. The webhook and
local-directory checks run against the project's receiver and a temporary directory.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import boto3
import fastavro
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditstream.config.destinations import (
    AzureBlobDestination,
    GcsDestination,
    LocalDestination,
    S3Destination,
    WebhookDestination,
)
from auditstream.pipeline.log import Record
from auditstream.sinks.azure_blob import AzureBlobSink
from auditstream.sinks.base import WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.check import check_destination
from auditstream.sinks.errors import PermanentError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.gcs import GcsSink
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.s3 import S3Sink
from auditstream.sinks.signature import IDEMPOTENCY_HEADER
from auditstream.sinks.webhook import CHECK_HEADER
from devservices.azurite import Azurite
from devservices.gcs import GcsServer
from devservices.ports import free_port
from devservices.s3 import S3Server
from devservices.webhook_receiver import WebhookReceiver
from tests.factories import make_event

ACCOUNT = "acct-it"
PREFIX = "audit/stream"
PARTITION = 3
FIRST_OFFSET = 4200
DAY = "2026-11-27"  # tests.factories.make_event's date
MiB = 1024 * 1024


def make_batch(n: int, *, first_offset: int = FIRST_OFFSET, noise: int = 0) -> Batch:
    """``n`` events of ``ACCOUNT`` at consecutive offsets; ``noise`` random hex characters in
    each event's details make the batch large and hard to compress."""
    topic = "auditstream.dest.store-it"
    extra: dict[str, Any] = {}
    events = []
    for _ in range(n):
        if noise:
            extra = {"details": {"noise": secrets.token_hex(noise // 2)}}
        events.append(make_event(account_id=ACCOUNT, **extra))
    return Batch(
        destination_id="store-it",
        account_id=ACCOUNT,
        topic=topic,
        partition=PARTITION,
        records=[
            Record(topic, PARTITION, first_offset + i, ACCOUNT.encode(), b"") for i in range(n)
        ],
        events=events,
    )


def ids(batch: Batch) -> list[str]:
    return [str(event["event_id"]) for event in batch.events]


def ndjson_ids(data: bytes) -> list[str]:
    return [json.loads(line)["event_id"] for line in data.splitlines() if line]


def expected_key(extension: str, first_offset: int = FIRST_OFFSET) -> str:
    return f"{PREFIX}/account={ACCOUNT}/date={DAY}/{PARTITION:03d}-{first_offset:020d}{extension}"


def new_bucket() -> str:
    return f"it-{uuid.uuid4().hex[:20]}"


# -- backends -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    data: bytes
    content_type: str | None
    content_encoding: str | None


class Backend(Protocol):
    """One object store as the tests see it: settings for the sink, and the vendor's SDK to
    look at what the sink stored."""

    name: str
    large_settings: dict[str, Any]

    def destination(self, bucket: str, **overrides: Any) -> Any: ...

    def create_bucket(self, bucket: str) -> None: ...

    def keys(self, bucket: str) -> list[str]: ...

    def read(self, bucket: str, key: str) -> Stored: ...

    def upload_parts(self, sink: ObjectStoreSink, write: Callable[[], None], bucket: str,
                     key: str) -> int: ...  # fmt: skip

    def closed_port_destination(self, bucket: str) -> Any: ...


class S3Backend:
    name = "s3"
    large_settings: dict[str, Any] = {"multipart_threshold_bytes": 5 * MiB}  # S3's least part

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.client = server.client()

    def destination(self, bucket: str, **overrides: Any) -> S3Destination:
        settings: dict[str, Any] = {
            "id": "store-it",
            "bucket": bucket,
            "prefix": PREFIX,
            "region": self.server.region,
            "endpoint_url": self.server.endpoint_url,
            "access_key_id": self.server.access_key_id,
            "secret_access_key": self.server.secret_access_key,
        }
        return S3Destination.model_validate({**settings, **overrides})

    def create_bucket(self, bucket: str) -> None:
        self.client.create_bucket(Bucket=bucket)

    def keys(self, bucket: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, bucket: str, key: str) -> Stored:
        answer = self.client.get_object(Bucket=bucket, Key=key)
        return Stored(answer["Body"].read(), answer["ContentType"], answer.get("ContentEncoding"))

    def upload_parts(
        self, sink: ObjectStoreSink, write: Callable[[], None], bucket: str, key: str
    ) -> int:
        write()
        etag = self.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        # A multipart upload's ETag ends in "-<number of parts>".
        return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1

    def closed_port_destination(self, bucket: str) -> S3Destination:
        return self.destination(bucket, endpoint_url=f"http://127.0.0.1:{free_port()}")


class GcsBackend:
    name = "gcs"
    large_settings: dict[str, Any] = {"resumable_threshold_bytes": MiB}

    def __init__(self, server: GcsServer) -> None:
        self.server = server
        self.client = server.client()

    def destination(self, bucket: str, **overrides: Any) -> GcsDestination:
        settings: dict[str, Any] = {
            "id": "store-it",
            "bucket": bucket,
            "prefix": PREFIX,
            "endpoint": self.server.endpoint,
            "anonymous": True,
        }
        return GcsDestination.model_validate({**settings, **overrides})

    def create_bucket(self, bucket: str) -> None:
        self.client.create_bucket(bucket)

    def keys(self, bucket: str) -> list[str]:
        return sorted(blob.name for blob in self.client.list_blobs(bucket))

    def read(self, bucket: str, key: str) -> Stored:
        blob = self.client.bucket(bucket).get_blob(key)
        assert blob is not None, f"no object {key}"
        data = blob.download_as_bytes(raw_download=True)  # as stored, not transcoded
        return Stored(data, blob.content_type, blob.content_encoding)

    def upload_parts(
        self, sink: ObjectStoreSink, write: Callable[[], None], bucket: str, key: str
    ) -> int:
        # A resumable upload is one POST that opens the session, then one PUT per chunk; a
        # small object goes in a single multipart POST.
        assert isinstance(sink, GcsSink)
        session = sink.client._http
        puts: list[str] = []
        original = session.request

        def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if method == "PUT" and "/upload/" in url:
                puts.append(url)
            return original(method, url, *args, **kwargs)

        session.request = counting
        try:
            write()
        finally:
            session.request = original
        return len(puts) or 1

    def closed_port_destination(self, bucket: str) -> GcsDestination:
        return self.destination(bucket, endpoint=f"http://127.0.0.1:{free_port()}")


class AzureBackend:
    name = "azure_blob"
    large_settings: dict[str, Any] = {"block_size_bytes": MiB}

    def __init__(self, server: Azurite) -> None:
        self.server = server
        self.client = server.client()

    def destination(self, bucket: str, **overrides: Any) -> AzureBlobDestination:
        settings: dict[str, Any] = {
            "id": "store-it",
            "container": bucket,
            "prefix": PREFIX,
            "connection_string": self.server.connection_string,
        }
        return AzureBlobDestination.model_validate({**settings, **overrides})

    def create_bucket(self, bucket: str) -> None:
        self.client.create_container(bucket)

    def keys(self, bucket: str) -> list[str]:
        container = self.client.get_container_client(bucket)
        return sorted(str(name) for name in container.list_blob_names())

    def read(self, bucket: str, key: str) -> Stored:
        blob = self.client.get_blob_client(bucket, key)
        # decompress=False: as stored (the SDK would otherwise undo Content-Encoding: gzip).
        data = blob.download_blob(decompress=False).readall()
        settings = blob.get_blob_properties().content_settings
        return Stored(data, settings.content_type, settings.content_encoding)

    def upload_parts(
        self, sink: ObjectStoreSink, write: Callable[[], None], bucket: str, key: str
    ) -> int:
        write()
        committed, _uncommitted = self.client.get_blob_client(bucket, key).get_block_list()
        return len(committed) or 1  # a single Put Blob has no block list

    def closed_port_destination(self, bucket: str) -> AzureBlobDestination:
        port = free_port()
        return self.destination(
            bucket,
            connection_string=self.server.connection_string.replace(
                f":{self.server.port}/", f":{port}/"
            ),
        )


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server.start(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    with GcsServer.start(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite.start(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(params=["s3", "gcs", "azure_blob"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "s3":
        return S3Backend(request.getfixturevalue("s3_server"))
    if request.param == "gcs":
        return GcsBackend(request.getfixturevalue("gcs_server"))
    return AzureBackend(request.getfixturevalue("azurite"))


@pytest.fixture
def bucket(backend: Backend) -> str:
    name = new_bucket()
    backend.create_bucket(name)
    return name


def sink_for(backend: Backend, bucket: str, **overrides: Any) -> ObjectStoreSink:
    sink = build_sink(backend.destination(bucket, **overrides))
    assert isinstance(sink, ObjectStoreSink)
    return sink


# -- writing --------------------------------------------------------------------------------------


def test_batch_is_one_gzip_ndjson_object_at_its_key(backend: Backend, bucket: str) -> None:
    sink = sink_for(backend, bucket)
    batch = make_batch(1000)

    written = sink.write(batch)
    sink.close()

    key = expected_key(".ndjson.gz")
    assert backend.keys(bucket) == [key]
    stored = backend.read(bucket, key)
    assert stored.content_type == "application/x-ndjson"
    assert stored.content_encoding == "gzip"
    assert ndjson_ids(gzip.decompress(stored.data)) == ids(batch)
    assert written == WriteResult(bytes_written=len(stored.data), deliveries=1)


def test_avro_batch_decodes_with_fastavro(backend: Backend, bucket: str) -> None:
    sink = sink_for(backend, bucket, format="avro", compression="deflate")
    batch = make_batch(1000)

    sink.write(batch)

    key = expected_key(".avro")
    assert backend.keys(bucket) == [key]
    stored = backend.read(bucket, key)
    assert stored.content_type == "application/avro"
    assert not stored.content_encoding
    records: list[Any] = list(fastavro.reader(io.BytesIO(stored.data)))
    assert [str(r["event_id"]) for r in records] == ids(batch)
    assert records[0]["account_id"] == ACCOUNT


def test_replayed_batch_overwrites_its_object(backend: Backend, bucket: str) -> None:
    sink = sink_for(backend, bucket)
    first = make_batch(1000)
    # A replay after a crash starts at the same offset; an age-based flush may cut it shorter.
    replay = make_batch(600)

    sink.write(first)
    sink.write(first)
    sink.write(replay)

    key = expected_key(".ndjson.gz")
    assert backend.keys(bucket) == [key]
    assert ndjson_ids(gzip.decompress(backend.read(bucket, key).data)) == ids(replay)


def test_next_batch_gets_its_own_object(backend: Backend, bucket: str) -> None:
    sink = sink_for(backend, bucket)
    sink.write(make_batch(10))
    sink.write(make_batch(10, first_offset=FIRST_OFFSET + 10))

    assert backend.keys(bucket) == [
        expected_key(".ndjson.gz"),
        expected_key(".ndjson.gz", FIRST_OFFSET + 10),
    ]


def test_large_batch_uploads_in_parts(backend: Backend, bucket: str) -> None:
    sink = sink_for(backend, bucket, compression="none", **backend.large_settings)
    batch = make_batch(4000, noise=1024)  # about 6 MiB of NDJSON
    key = expected_key(".ndjson")

    results: list[WriteResult] = []
    parts = backend.upload_parts(sink, lambda: results.append(sink.write(batch)), bucket, key)

    threshold = next(iter(backend.large_settings.values()))
    [written] = results
    assert written.deliveries == 1
    assert written.bytes_written > threshold
    assert parts >= 2, parts
    assert backend.keys(bucket) == [key]
    stored = backend.read(bucket, key)
    assert len(stored.data) == written.bytes_written
    assert stored.content_encoding in (None, "")
    assert ndjson_ids(stored.data) == ids(batch)


def test_missing_bucket_is_a_permanent_bucket_missing(backend: Backend) -> None:
    sink = sink_for(backend, new_bucket())

    with pytest.raises(PermanentError) as info:
        sink.write(make_batch(3))

    assert info.value.cause == "bucket_missing"
    assert "does not exist" in str(info.value)


# -- the destination check ------------------------------------------------------------------------


def test_check_passes_and_leaves_nothing_behind(backend: Backend, bucket: str) -> None:
    result = check_destination(backend.destination(bucket))

    assert result.ok, result
    assert result.cause is None
    assert "works" in result.message
    assert any(step.startswith(f"wrote {PREFIX}/_auditstream_check/") for step in result.steps)
    assert any(step.startswith("overwrote ") for step in result.steps)
    assert any(step.startswith("read ") and "the same" in step for step in result.steps)
    assert any(step.startswith("deleted ") for step in result.steps)
    assert backend.keys(bucket) == []


def test_check_names_a_missing_bucket(backend: Backend) -> None:
    result = check_destination(backend.destination(new_bucket()))

    assert not result.ok
    assert result.cause == "bucket_missing"
    assert "create it" in result.message


def test_check_names_an_unreachable_endpoint(backend: Backend) -> None:
    result = check_destination(backend.closed_port_destination(new_bucket()))

    assert not result.ok
    assert result.cause == "unreachable"
    assert "reachable" in result.message


def test_check_names_a_wrong_azure_key(azurite: Azurite) -> None:
    backend = AzureBackend(azurite)
    bucket = new_bucket()
    backend.create_bucket(bucket)
    wrong_key = "d3Jvbmcta2V5LWZvci10aGUtY2hlY2stdGVzdA=="

    for destination in (
        backend.destination(bucket, connection_string=azurite.connection_string_for(wrong_key)),
        backend.destination(
            bucket,
            connection_string=None,
            account_url=azurite.account_url,
            account_key=wrong_key,
        ),
    ):
        result = check_destination(destination)
        assert not result.ok
        assert result.cause == "bad_credentials"
        assert wrong_key not in result.message
        assert wrong_key not in " ".join(result.steps)
    assert backend.keys(bucket) == []


def test_account_url_with_the_right_key_works(azurite: Azurite) -> None:
    backend = AzureBackend(azurite)
    bucket = new_bucket()
    backend.create_bucket(bucket)
    destination = backend.destination(
        bucket,
        connection_string=None,
        account_url=azurite.account_url,
        account_key=azurite.account_key,
    )
    sink = build_sink(destination)
    assert isinstance(sink, AzureBlobSink)

    sink.write(make_batch(5))

    assert backend.keys(bucket) == [expected_key(".ndjson.gz")]


def s3_user(server: S3Server, name: str, actions: list[str]) -> dict[str, str]:
    """Settings with the keys of a new IAM user allowed only ``actions`` on S3. moto checks
    IAM policies only with ``enforce_auth``; users are made in a short unauthenticated window
    (``/moto-api/reset-auth``), since the server's own user may use S3 only."""

    def allow_unauthenticated(requests: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset-auth", body=str(requests).encode())
            assert connection.getresponse().status == 200
        finally:
            connection.close()

    iam = boto3.client(
        "iam",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                      "Resource": "*"}]}  # fmt: skip
    allow_unauthenticated(3)
    try:
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
    finally:
        allow_unauthenticated(0)
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def test_check_with_s3_credentials_and_permissions(tmp_path: Path) -> None:
    # moto accepts any credentials unless its IAM checks are switched on.
    with S3Server.start(tmp_path / "s3-auth", enforce_auth=True) as server:
        backend = S3Backend(server)
        bucket = new_bucket()
        backend.create_bucket(bucket)
        writer = s3_user(server, "writer", ["s3:PutObject"])
        reader = s3_user(server, "reader", ["s3:GetObject"])

        good = check_destination(backend.destination(bucket))
        wrong_secret = check_destination(
            backend.destination(bucket, secret_access_key="not-the-secret-8c1f")
        )
        unknown_key = check_destination(
            backend.destination(bucket, access_key_id="AKIAUNKNOWN000000000")
        )
        write_only = check_destination(backend.destination(bucket, **writer))
        read_only = check_destination(backend.destination(bucket, **reader))
        left_behind = backend.keys(bucket)

    assert good.ok, good
    for result in (wrong_secret, unknown_key):
        assert not result.ok
        assert result.cause == "bad_credentials"
        assert "not-the-secret-8c1f" not in result.message
    assert "SignatureDoesNotMatch" in wrong_secret.message
    assert "InvalidAccessKeyId" in unknown_key.message
    # Delivery needs s3:PutObject only: refused reads and deletes are notes.
    assert write_only.ok, write_only
    assert "not read back" in write_only.message
    assert "not deleted (access_denied" in write_only.message
    assert any("s3:DeleteObject" in step for step in write_only.steps)
    assert len(left_behind) == 1
    assert not read_only.ok
    assert read_only.cause == "access_denied"
    assert "s3:PutObject" in read_only.message
    assert writer["secret_access_key"] not in write_only.message + " ".join(write_only.steps)


class _TokenEndpoint(BaseHTTPRequestHandler):
    """An OAuth token endpoint that refuses every service-account assertion."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"error": "invalid_grant", "error_description": "key disabled"})
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_check_names_a_refused_gcs_service_account(gcs_server: GcsServer) -> None:
    # fake-gcs-server checks no credentials; the OAuth exchange before the upload is what
    # fails here, against a local token endpoint that refuses the key.
    tokens = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=tokens.serve_forever, daemon=True)
    thread.start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "audit-it",
        "private_key_id": "it-key-id-3a9c",
        "private_key": pem,
        "client_email": "writer@audit-it.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{tokens.server_address[1]}/token",
    }
    backend = GcsBackend(gcs_server)
    bucket = new_bucket()
    backend.create_bucket(bucket)
    try:
        result = check_destination(
            backend.destination(bucket, anonymous=False, service_account_json=json.dumps(account))
        )
    finally:
        tokens.shutdown()
        tokens.server_close()

    assert not result.ok
    assert result.cause == "bad_credentials"
    assert "it-key-id-3a9c" not in result.message
    assert "PRIVATE KEY" not in result.message


def test_check_of_a_local_directory(tmp_path: Path) -> None:
    destination = LocalDestination.model_validate(
        {"id": "local-it", "path": "out", "prefix": PREFIX}
    )

    result = check_destination(destination, local_root=tmp_path)

    assert result.ok, result
    assert (tmp_path / "out" / PREFIX / "_auditstream_check").is_dir()
    assert list((tmp_path / "out" / PREFIX / "_auditstream_check").iterdir()) == []


@pytest.mark.parametrize("body", ["json_array", "ndjson"])
def test_check_of_a_webhook(body: str) -> None:
    secret = "check-secret-1d4e"
    with WebhookReceiver(secret.encode()) as receiver:
        good = check_destination(
            WebhookDestination.model_validate(
                {"id": "siem-it", "url": receiver.url, "secret": secret, "body": body}
            )
        )
        wrong = check_destination(
            WebhookDestination.model_validate(
                {"id": "siem-it", "url": receiver.url, "secret": "wrong-secret-77ab", "body": body}
            )
        )
        deliveries = receiver.deliveries

    assert good.ok, good
    assert not wrong.ok
    assert wrong.cause == "bad_credentials"
    assert "wrong-secret-77ab" not in wrong.message
    [delivery] = deliveries
    assert delivery.event_ids == ()
    assert delivery.headers[CHECK_HEADER] == "1"
    assert (delivery.idempotency_key or "").startswith("siem-it:check:")
    assert IDEMPOTENCY_HEADER in delivery.headers


def test_check_names_an_unreachable_webhook() -> None:
    destination = WebhookDestination.model_validate(
        {"id": "siem-it", "url": f"http://127.0.0.1:{free_port()}/hook", "secret": "s-1"}
    )

    result = check_destination(destination)

    assert not result.ok
    assert result.cause == "unreachable"


def test_sinks_repr_name_no_secret(s3_server: S3Server, azurite: Azurite) -> None:
    s3 = S3Sink(S3Backend(s3_server).destination("logs", secret_access_key="s3-secret-4b1a"))
    azure = AzureBlobSink(AzureBackend(azurite).destination("logs"))
    assert "s3-secret-4b1a" not in repr(s3)
    assert azurite.account_key not in repr(azure)
    assert "AccountKey" not in repr(azure)
