"""``auditstream api`` as a process: it refuses to start without a secret key (saying how to
make one), serves the API with one, and prints the committed OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from auditstream.cli import main
from auditstream.config.secrets import ENV_KEYS, ENV_KEYS_FILE, SecretBox
from devservices.ports import free_port
from devservices.processes import ProjectProcess

ROOT = Path(__file__).resolve().parents[2]


def _env_without_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (ENV_KEYS, ENV_KEYS_FILE)}


def test_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "auditstream",
            "api",
            "--db",
            str(tmp_path / "l.sqlite"),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_without_keys(),
        check=False,
    )
    assert result.returncode == 2
    assert ENV_KEYS in result.stderr
    assert "auditstream keys generate" in result.stderr


def test_serves_with_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "l.sqlite"
    port = free_port()
    key = SecretBox.generate_key()
    with ProjectProcess(
        ["api", "--db", str(db), "--port", str(port)],
        tmp_path / "api.log",
        env={ENV_KEYS: key},
    ) as api:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert api.alive(), api.output()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, api.output()[-2000:]
            time.sleep(0.2)
        capsys.readouterr()
        code = main(
            [
                "tokens",
                "create",
                "--account",
                "acme",
                "--user",
                "ada",
                "--role",
                "admin",
                "--db",
                str(db),
            ]
        )
        assert code == 0
        token = capsys.readouterr().out.strip()
        me = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.json()["role"] == "admin"
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{url}/v1/accounts/acme/stream", timeout=10).status_code == 401
    assert token not in api.output()


def test_print_openapi_is_the_committed_document(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["api", "--print-openapi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
