"""The connection-time address check inside each vendor SDK, against the real emulators on
127.0.0.1: with loopback allowed every upload path works (single request, multipart, resumable,
blocks, the destination check); without it nothing reaches the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditstream.config.address_policy import AddressPolicy, parse_networks
from auditstream.sinks.check import check_destination
from auditstream.sinks.errors import PermanentError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.object_store import ObjectStoreSink
from devservices.azurite import Azurite
from devservices.gcs import GcsServer
from devservices.s3 import S3Server
from tests.integration.test_object_store_sinks import (
    AzureBackend,
    Backend,
    GcsBackend,
    S3Backend,
    expected_key,
    ids,
    make_batch,
    ndjson_ids,
    new_bucket,
)

EMULATORS = AddressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
STRICT = AddressPolicy()


@pytest.fixture(scope="module")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server.start(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    with GcsServer.start(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture(scope="module")
def azurite_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite.start(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(params=["s3", "gcs", "azure_blob"])
def store(request: pytest.FixtureRequest) -> Backend:
    if request.param == "s3":
        return S3Backend(request.getfixturevalue("s3_emulator"))
    if request.param == "gcs":
        return GcsBackend(request.getfixturevalue("gcs_emulator"))
    return AzureBackend(request.getfixturevalue("azurite_emulator"))


def _sink(
    store: Backend, bucket: str, policy: AddressPolicy, **overrides: object
) -> ObjectStoreSink:
    sink = build_sink(store.destination(bucket, **overrides), address_policy=policy)
    assert isinstance(sink, ObjectStoreSink)
    return sink


def test_allowed_emulators_take_small_and_large_objects(store: Backend) -> None:
    bucket = new_bucket()
    store.create_bucket(bucket)
    sink = _sink(store, bucket, EMULATORS, compression="none")
    small = make_batch(50)
    sink.write(small)
    sink.close()
    assert ndjson_ids(store.read(bucket, expected_key(".ndjson")).data) == ids(small)

    large_sink = _sink(store, bucket, EMULATORS, compression="none", **store.large_settings)
    large = make_batch(2500, first_offset=9000, noise=4096)

    def write_large() -> None:
        large_sink.write(large)

    parts = store.upload_parts(large_sink, write_large, bucket, expected_key(".ndjson", 9000))
    large_sink.close()
    assert parts >= 2
    stored = store.read(bucket, expected_key(".ndjson", 9000)).data
    assert ndjson_ids(stored) == ids(large)

    result = check_destination(store.destination(bucket), address_policy=EMULATORS)
    assert result.ok, result.message


def test_without_an_allowance_nothing_reaches_the_emulator(store: Backend) -> None:
    bucket = new_bucket()
    store.create_bucket(bucket)
    sink = _sink(store, bucket, STRICT)
    with pytest.raises(PermanentError) as caught:
        sink.write(make_batch(10))
    sink.close()
    assert caught.value.cause == "address_refused"
    assert store.keys(bucket) == []
    result = check_destination(store.destination(bucket), address_policy=STRICT)
    assert result.ok is False
    assert result.cause == "address_refused"
    assert store.keys(bucket) == []
