"""Imports only go down the package graph; one top-level package is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.import_graph import (
    LAYERS,
    ROOT,
    SUBPACKAGE_FOLDERS,
    imports_of,
    outside_imports,
    product_modules,
    violations,
)


def test_no_product_import_goes_up_or_sideways() -> None:
    assert violations() == []


def test_every_product_module_belongs_to_a_layer() -> None:
    assert len(product_modules()) > 50
    assert {u for layer in LAYERS for u in layer} >= {
        f"auditstream.{f}" for f in SUBPACKAGE_FOLDERS
    }


def test_benchmarks_and_dev_services_never_import_the_tests() -> None:
    assert outside_imports("bench", ("tests",)) == []
    if (ROOT / "devservices").is_dir():
        assert outside_imports("devservices", ("tests", "bench")) == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from auditstream.api.app import build_app\n"
        "def f():\n    from auditstream.sinks import worker\n"
        "from sinks import factory\n"
    )
    found = violations({"auditstream.config.bad": bad, "auditstream.pipeline.x": bad})
    assert any("imports auditstream.api.app (upward)" in v for v in found)
    assert any("imports auditstream.sinks (upward)" in v for v in found)  # inside a function
    assert any("imports sinks (outside the installed package)" in v for v in found)
    assert len(imports_of("auditstream.config.bad", bad)) == 3


@pytest.mark.slow
def test_the_wheel_installs_exactly_one_top_level_package(tmp_path: Path) -> None:
    build_dir = ROOT / "build"
    leftover = not build_dir.exists()  # pip builds in the tree: leave it as it was found
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(tmp_path),
                str(ROOT),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    finally:
        if leftover:
            shutil.rmtree(build_dir, ignore_errors=True)
    (wheel,) = tmp_path.glob("auditstream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"auditstream"}
    modules = (n.removesuffix(".py").replace("/", ".") for n in names if n.endswith(".py"))
    installed = {m.removesuffix(".__init__") for m in modules}
    missing = {m for m in product_modules() if m.removesuffix(".__init__") not in installed}
    assert missing == set()
    for data in (
        "auditstream/config/demo.yaml",
        "auditstream/py.typed",
        "auditstream/sinks/py.typed",
    ):
        assert data in names
    assert any(n.startswith("auditstream/schemas/avro/") and n.endswith(".avsc") for n in names)


def test_the_settings_api_loads_no_vendor_sdk() -> None:
    """The API validates settings with their models; only a destination check builds a sink."""
    code = (
        "import sys, auditstream.api.app, auditstream.api.service\n"
        "vendors = ('boto3', 'botocore', 'google.cloud', 'google.auth', 'azure.storage')\n"
        "print(sorted(m for m in sys.modules if m.startswith(vendors)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
