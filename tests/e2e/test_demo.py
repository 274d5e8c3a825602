"""The README's first command: `auditstream demo`, on the bundled settings and on a settings
file whose destinations are the three object-store emulators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from devservices.object_stores import AzureStore, GcsStore, S3Store
from tests.e2e.harness import local_event_ids


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditstream", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_on_the_bundled_settings(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = _demo("--events", "3000", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every included event was delivered exactly once" in result.stdout
    assert local_event_ids(out / "acme-archive")
    assert not local_event_ids(out / "initech-archive")  # streaming off
    # Running it again starts from a clean folder.
    again = _demo("--events", "1000", "--out", str(out))
    assert again.returncode == 0, again.stdout + again.stderr


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = _demo("--events", "10", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "choose another --out" in result.stderr + result.stdout
    assert (tmp_path / "precious.txt").exists()


def test_demo_with_cloud_destinations(tmp_path: Path) -> None:
    s3, gcs, azure = (
        S3Store(tmp_path / "s3"),
        GcsStore(tmp_path / "gcs"),
        AzureStore(tmp_path / "az"),
    )
    try:
        config = {
            "accounts": [
                {"account_id": "acme", "destinations": [s3.destination("acme-s3")]},
                {
                    "account_id": "globex",
                    "include_categories": ["account"],
                    "destinations": [gcs.destination("globex-gcs", format="avro")],
                },
                {"account_id": "initech", "destinations": [azure.destination("initech-az")]},
            ]
        }
        path = tmp_path / "cloud.yaml"
        path.write_text(yaml.safe_dump(config))
        result = _demo("--events", "2000", "--out", str(tmp_path / "out"), "--config", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "s3://audit-bucket" in result.stdout
        for store in (s3, gcs, azure):
            assert store.objects(), f"{store.kind}: nothing stored"
        assert "testing" not in result.stdout  # credentials never printed
    finally:
        s3.stop()
        gcs.stop()
        azure.stop()
