"""The local storage emulators (moto_server, fake-gcs-server, Azurite) with the official SDKs.

Each test starts its emulator as a real process on 127.0.0.1. A missing emulator fails the
test with a message to run ``deploy/local/emulators.sh install``; nothing is skipped.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobBlock
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from google.api_core.exceptions import NotFound

from devservices.azurite import Azurite
from devservices.gcs import GcsServer
from devservices.s3 import S3Server

MiB = 1024 * 1024
SMALL = b'{"event_id":"e-1","activity":"user_login"}\n'


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with S3Server.start(tmp_path / "moto") as server:
        yield server


@pytest.fixture
def s3_auth(tmp_path: Path) -> Iterator[S3Server]:
    with S3Server.start(tmp_path / "moto-auth", enforce_auth=True) as server:
        yield server


@pytest.fixture
def gcs(tmp_path: Path) -> Iterator[GcsServer]:
    with GcsServer.start(tmp_path / "gcs") as server:
        yield server


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    with Azurite.start(tmp_path / "azurite") as server:
        yield server


def _error_code(error: ClientError) -> tuple[int, str]:
    response = error.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


# --- S3 (moto_server) ---------------------------------------------------------------------


def test_s3_round_trip_and_multipart_upload(s3: S3Server) -> None:
    assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    client = s3.client()
    client.create_bucket(Bucket="audit-it")

    client.put_object(Bucket="audit-it", Key="small/one.ndjson", Body=SMALL)
    assert client.get_object(Bucket="audit-it", Key="small/one.ndjson")["Body"].read() == SMALL

    payload = os.urandom(12 * MiB + 17)
    transfer = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_fileobj(io.BytesIO(payload), "audit-it", "large/batch.avro", Config=transfer)
    head = client.head_object(Bucket="audit-it", Key="large/batch.avro")
    assert head["ContentLength"] == len(payload)
    assert head["ETag"].strip('"').endswith("-3"), "expected a 3-part multipart upload"
    downloaded = io.BytesIO()
    client.download_fileobj("audit-it", "large/batch.avro", downloaded, Config=transfer)
    assert downloaded.getvalue() == payload

    listed = client.list_objects_v2(Bucket="audit-it")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["large/batch.avro", "small/one.ndjson"]
    client.delete_object(Bucket="audit-it", Key="small/one.ndjson")
    listed = client.list_objects_v2(Bucket="audit-it")
    assert [o["Key"] for o in listed["Contents"]] == ["large/batch.avro"]

    pid = s3.pid
    s3.stop()
    assert not s3.running
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists()


def test_s3_accepts_any_credentials_by_default(s3: S3Server) -> None:
    s3.client().create_bucket(Bucket="audit-it")
    stranger = s3.client(access_key_id="AKIAWRONGWRONGWRONG1", secret_access_key="wrong")
    stranger.put_object(Bucket="audit-it", Key="k", Body=b"x")
    assert stranger.get_object(Bucket="audit-it", Key="k")["Body"].read() == b"x"


def test_s3_enforced_auth_rejects_wrong_credentials(s3_auth: S3Server) -> None:
    assert s3_auth.access_key_id.startswith("AKIA")
    client = s3_auth.client()
    client.create_bucket(Bucket="audit-it")
    payload = os.urandom(6 * MiB)
    transfer = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_fileobj(io.BytesIO(payload), "audit-it", "large.bin", Config=transfer)
    assert client.get_object(Bucket="audit-it", Key="large.bin")["Body"].read() == payload

    unknown_key = s3_auth.client(access_key_id="testing", secret_access_key="testing")
    with pytest.raises(ClientError) as unknown:
        unknown_key.put_object(Bucket="audit-it", Key="k", Body=b"x")
    assert _error_code(unknown.value) == (403, "InvalidAccessKeyId")

    wrong_secret = s3_auth.client(secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as wrong:
        wrong_secret.list_objects_v2(Bucket="audit-it")
    assert _error_code(wrong.value) == (403, "SignatureDoesNotMatch")

    # After a restart the same key is set up again and checks stay on.
    key_id = s3_auth.access_key_id
    s3_auth.restart()
    assert s3_auth.access_key_id == key_id
    s3_auth.client().create_bucket(Bucket="audit-it-2")
    with pytest.raises(ClientError) as again:
        wrong_secret.list_objects_v2(Bucket="audit-it-2")
    assert _error_code(again.value) == (403, "SignatureDoesNotMatch")


def test_s3_restart_keeps_port_and_loses_data(s3: S3Server) -> None:
    port = s3.port
    s3.client().create_bucket(Bucket="audit-it")
    s3.stop()
    s3.restart()
    assert s3.port == port
    assert s3.running
    client = s3.client()
    assert client.list_buckets()["Buckets"] == []
    client.create_bucket(Bucket="audit-it")


# --- GCS (fake-gcs-server) ----------------------------------------------------------------


def test_gcs_round_trip_and_resumable_upload(gcs: GcsServer) -> None:
    assert gcs.endpoint == f"http://127.0.0.1:{gcs.port}"
    client = gcs.client()
    bucket = client.create_bucket("audit-it")

    bucket.blob("small/one.ndjson").upload_from_string(SMALL, content_type="application/x-ndjson")
    assert bucket.blob("small/one.ndjson").download_as_bytes() == SMALL

    # The upload session URL comes from the server's external URL: it must be the emulator.
    session = bucket.blob("large/probe.bin").create_resumable_upload_session(size=1)
    assert session.startswith(f"{gcs.endpoint}/upload/")

    payload = os.urandom(9 * MiB + 5)
    large = bucket.blob("large/batch.avro", chunk_size=2 * MiB)  # chunk_size => resumable
    large.upload_from_file(io.BytesIO(payload), size=len(payload))
    assert bucket.get_blob("large/batch.avro").size == len(payload)
    assert bucket.blob("large/batch.avro").download_as_bytes() == payload

    names = sorted(b.name for b in client.list_blobs("audit-it"))
    assert names == ["large/batch.avro", "small/one.ndjson"]
    bucket.blob("small/one.ndjson").delete()
    assert [b.name for b in client.list_blobs("audit-it")] == ["large/batch.avro"]

    gcs.stop()
    assert not gcs.running


def test_gcs_restart_keeps_port_and_loses_data(gcs: GcsServer) -> None:
    port = gcs.port
    gcs.client().create_bucket("audit-it").blob("k").upload_from_string(b"x")
    gcs.stop()
    gcs.restart()
    assert gcs.port == port
    client = gcs.client()
    with pytest.raises(NotFound):
        client.get_bucket("audit-it")
    client.create_bucket("audit-it").blob("k").upload_from_string(b"y")
    assert client.bucket("audit-it").blob("k").download_as_bytes() == b"y"


# --- Azure Blob (Azurite) -----------------------------------------------------------------


def test_azurite_round_trip_and_block_upload(azurite: Azurite) -> None:
    assert azurite.account_url == f"http://127.0.0.1:{azurite.port}/devstoreaccount1"
    assert f"BlobEndpoint={azurite.account_url};" in azurite.connection_string
    service = azurite.client(max_single_put_size=1 * MiB, max_block_size=1 * MiB)
    container = service.create_container("audit-it")

    container.upload_blob("small/one.ndjson", SMALL)
    assert container.download_blob("small/one.ndjson").readall() == SMALL

    payload = os.urandom(9 * MiB + 5)
    container.upload_blob("large/batch.avro", payload)
    committed, _ = container.get_blob_client("large/batch.avro").get_block_list("committed")
    assert len(committed) == 10, "expected a 10-block upload (1 MiB blocks)"
    assert container.download_blob("large/batch.avro").readall() == payload

    # The same by hand: stage blocks, then commit the list.
    manual = container.get_blob_client("large/manual.bin")
    blocks = []
    for i, chunk in enumerate((payload[: 2 * MiB], payload[2 * MiB : 3 * MiB])):
        block_id = base64.b64encode(f"block-{i:06d}".encode()).decode()
        manual.stage_block(block_id, chunk)
        blocks.append(BlobBlock(block_id))
    manual.commit_block_list(blocks)
    assert manual.download_blob().readall() == payload[: 3 * MiB]

    names = sorted(b.name for b in container.list_blobs())
    assert names == ["large/batch.avro", "large/manual.bin", "small/one.ndjson"]
    container.delete_blob("small/one.ndjson")
    with pytest.raises(ResourceNotFoundError):
        container.download_blob("small/one.ndjson").readall()

    azurite.stop()
    assert not azurite.running


def test_azurite_rejects_wrong_account_key(azurite: Azurite) -> None:
    azurite.client().create_container("audit-it")
    wrong_key = base64.b64encode(
        b"not the devstoreaccount1 key, 64 bytes long....................."
    )
    intruder = azurite.client(account_key=wrong_key.decode())
    with pytest.raises(HttpResponseError) as listing:
        list(intruder.list_containers())
    assert listing.value.status_code == 403
    # The storage SDK sets error_code on the exceptions it raises; it is not declared.
    assert getattr(listing.value, "error_code", None) == "AuthorizationFailure"
    with pytest.raises(HttpResponseError) as upload:
        intruder.get_blob_client("audit-it", "k").upload_blob(b"x")
    assert upload.value.status_code == 403
    assert [b.name for b in azurite.client().get_container_client("audit-it").list_blobs()] == []


def test_azurite_restart_keeps_port_and_data(azurite: Azurite) -> None:
    port = azurite.port
    azurite.client().create_container("audit-it").upload_blob("k", SMALL)
    azurite.stop()
    azurite.restart()
    assert azurite.port == port
    container = azurite.client().get_container_client("audit-it")
    assert container.download_blob("k").readall() == SMALL
