"""The three storage emulators behind one small interface for end-to-end tests and benchmarks:
destination settings pointing at the emulator, and every stored object read back with the
official SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from .azurite import Azurite
from .gcs import GcsServer
from .s3 import S3Server

BUCKET = "audit-bucket"


class Store(Protocol):
    kind: str

    def destination(self, dest_id: str, **extra: Any) -> dict[str, Any]: ...

    def objects(self) -> dict[str, bytes]: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...


class S3Store:
    kind = "s3"

    def __init__(self, workdir: Path) -> None:
        self.server = S3Server.start(workdir)
        self.server.client().create_bucket(Bucket=BUCKET)

    def destination(self, dest_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": dest_id,
            "type": "s3",
            "bucket": BUCKET,
            "region": "us-east-1",
            "endpoint_url": self.server.endpoint_url,
            "force_path_style": True,
            "access_key_id": "testing",
            "secret_access_key": "testing",
            **extra,
        }

    def objects(self) -> dict[str, bytes]:
        client = self.server.client()
        out: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                key = item["Key"]
                out[key] = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return out

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server.restart()


class GcsStore:
    kind = "gcs"

    def __init__(self, workdir: Path) -> None:
        self.server = GcsServer.start(workdir)
        self.server.client().create_bucket(BUCKET)

    def destination(self, dest_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": dest_id,
            "type": "gcs",
            "bucket": BUCKET,
            "project": "test",
            "endpoint": self.server.endpoint,
            "anonymous": True,
            **extra,
        }

    def objects(self) -> dict[str, bytes]:
        client = self.server.client()
        return {b.name: b.download_as_bytes(raw_download=True) for b in client.list_blobs(BUCKET)}

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server.restart()


class AzureStore:
    kind = "azure_blob"

    def __init__(self, workdir: Path) -> None:
        self.server = Azurite.start(workdir)
        self.server.client().create_container(BUCKET)

    def destination(self, dest_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": dest_id,
            "type": "azure_blob",
            "container": BUCKET,
            "connection_string": self.server.connection_string,
            **extra,
        }

    def objects(self) -> dict[str, bytes]:
        container = self.server.client().get_container_client(BUCKET)
        return {
            b.name: container.download_blob(b.name, decompress=False).readall()
            for b in container.list_blobs()
        }

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server.restart()


def start_store(kind: str, workdir: Path) -> Store:
    stores: dict[str, type[S3Store] | type[GcsStore] | type[AzureStore]] = {
        "s3": S3Store,
        "gcs": GcsStore,
        "azure_blob": AzureStore,
    }
    return stores[kind](workdir)
