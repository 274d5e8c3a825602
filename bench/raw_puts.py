"""The raw baseline of the object-store bench: one object put with the store's official SDK
(or a plain file write with ``fsync`` for the local directory), no sink code in between."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devservices.object_stores import AzureStore, GcsStore, S3Store, Store

Put = Callable[[str, bytes], None]
Close = Callable[[], None]

RAW_CALLS = {
    "local": "open/write/fsync",
    "s3": "boto3 put_object",
    "gcs": "blob.upload_from_string",
    "azure_blob": "container.upload_blob",
}


def raw_putter(
    store: Store | None, root: Path, content_type: str, encoding: str | None
) -> tuple[Put, Close]:
    """A function putting one object with the store's official SDK, and one closing it;
    without a store, a file under ``root``."""
    # Imported when used: the emulator wrappers load all three storage SDKs, and the memory
    # part's child process, which imports the bench, must hold only what a worker holds.
    from devservices.object_stores import AzureStore, GcsStore, S3Store

    if store is None:
        return _file_putter(root), lambda: None
    if isinstance(store, S3Store):
        return _s3_putter(store, content_type, encoding)
    if isinstance(store, GcsStore):
        return _gcs_putter(store, content_type, encoding)
    if isinstance(store, AzureStore):
        return _azure_putter(store, content_type, encoding)
    raise ValueError(f"no raw put for {store.kind}")


def _file_putter(root: Path) -> Put:
    def put_file(key: str, data: bytes) -> None:
        with (root / key).open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return put_file


def _s3_putter(store: S3Store, content_type: str, encoding: str | None) -> tuple[Put, Close]:
    from devservices.object_stores import BUCKET

    s3 = store.server.client()
    extra = {"ContentType": content_type}
    if encoding is not None:
        extra["ContentEncoding"] = encoding

    def put_s3(key: str, data: bytes) -> None:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)

    return put_s3, s3.close


def _gcs_putter(store: GcsStore, content_type: str, encoding: str | None) -> tuple[Put, Close]:
    from devservices.object_stores import BUCKET

    gcs = store.server.client()
    bucket = gcs.bucket(BUCKET)

    def put_gcs(key: str, data: bytes) -> None:
        blob = bucket.blob(key)
        if encoding is not None:
            blob.content_encoding = encoding
        blob.upload_from_string(data, content_type=content_type)

    return put_gcs, gcs.close


def _azure_putter(store: AzureStore, content_type: str, encoding: str | None) -> tuple[Put, Close]:
    from azure.storage.blob import ContentSettings

    from devservices.object_stores import BUCKET

    service = store.server.client()
    container = service.get_container_client(BUCKET)
    settings = ContentSettings(content_type=content_type, content_encoding=encoding)

    def put_azure(key: str, data: bytes) -> None:
        container.upload_blob(key, data, overwrite=True, content_settings=settings)

    return put_azure, service.close
