"""Tenant credentials in log lines.

With ``--verbose`` (DEBUG), botocore logs every request it sends, headers included: the tenant's
access key id (in ``Authorization: ... Credential=<key id>/...``) and session token
(``X-Amz-Security-Token``) came out in clear. URL redaction does not see them. The CLI's log
handler now also replaces every secret of the settings this process has read (found by type)
wherever it appears in a line.
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditstream.config.loading import load_settings_file
from auditstream.config.secrets import (
    SecretBox,
    forget_secrets,
    redact_secrets,
    remember_secrets,
)
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings, encode_settings
from auditstream.log_setup import UrlRedactingFilter
from auditstream.sinks.factory import build_sink

ACCESS_KEY = "AKIAZQTENANTKEY4471"
SECRET_KEY = "zq-tenant-Secret-Access-Key-4471"
SESSION = "zqSessionToken/4471+abc=="
HEADER_TOKEN = "zq-header-Token-4471"
SAS = "sv=2024-01-01&sig=zqSasSignature4471"
SHORT = "prod"  # a header value of 4 characters is not hunted for in logs


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def _settings(port: int) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "s3",
                    "type": "s3",
                    "bucket": "acme-audit",
                    "endpoint_url": f"http://127.0.0.1:{port}",
                    "access_key_id": ACCESS_KEY,
                    "secret_access_key": SECRET_KEY,
                    "session_token": SESSION,
                },
                {
                    "id": "hook",
                    "type": "webhook",
                    "url": "https://siem.example.com/in",
                    "secret": "signing-Secret-4471",
                    "headers": {"Authorization": f"Splunk {HEADER_TOKEN}", "X-Env": SHORT},
                },
                {
                    "id": "az",
                    "type": "azure_blob",
                    "container": "audit",
                    "account_url": "https://acct.blob.core.windows.net",
                    "sas_token": SAS,
                },
            ],
        }
    )


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_botocore_debug_lines_carry_no_tenant_credential() -> None:
    box = SecretBox([SecretBox.generate_key()])
    settings = decode_settings(encode_settings(_settings(_closed_port()), box), box)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(UrlRedactingFilter())
    root = logging.getLogger()
    botocore = logging.getLogger("botocore")
    old_levels = root.level, botocore.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    botocore.setLevel(logging.DEBUG)  # as with --verbose
    try:
        sink = build_sink(settings.destinations[0])
        try:
            sink.probe()
        finally:
            sink.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_levels[0])
        botocore.setLevel(old_levels[1])
    text = out.getvalue()
    assert "Sending http request" in text  # botocore did log its request
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION):
        assert secret not in text


def test_every_secret_of_read_settings_is_redacted_wherever_it_appears() -> None:
    box = SecretBox([SecretBox.generate_key()])
    decode_settings(encode_settings(_settings(9), box), box)
    line = (
        f"x-amz-security-token:{SESSION} Credential={ACCESS_KEY}/20260101/eu-west-1/s3 "
        f"Authorization: Splunk {HEADER_TOKEN} ?{SAS} X-Env: {SHORT}"
    )
    shown = redact_secrets(line)
    for secret in (SESSION, ACCESS_KEY, HEADER_TOKEN, SAS):
        assert secret not in shown
    assert "[redacted]" in shown
    assert f"X-Env: {SHORT}" in shown  # too short to hunt for: ordinary words would go too


def test_the_filter_redacts_secrets_in_arguments_and_tracebacks() -> None:
    box = SecretBox([SecretBox.generate_key()])
    decode_settings(encode_settings(_settings(9), box), box)
    record = logging.LogRecord(
        "botocore.endpoint", logging.DEBUG, __file__, 1, "headers=%s", ({"t": SESSION},), None
    )
    try:
        raise RuntimeError(f"signing with {ACCESS_KEY} failed")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert UrlRedactingFilter().filter(record)
    assert SESSION not in record.getMessage()
    assert record.exc_text is not None
    assert ACCESS_KEY not in record.exc_text


def test_settings_files_teach_the_redaction_their_secrets_too(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        "accounts:\n"
        "  - account_id: acme\n"
        "    destinations:\n"
        "      - id: hook\n"
        "        type: webhook\n"
        "        url: https://siem.example.com/in\n"
        f"        secret: {SECRET_KEY}\n",
        encoding="utf-8",
    )
    load_settings_file(path)
    assert SECRET_KEY not in redact_secrets(f"signed with {SECRET_KEY}")


def test_redaction_finds_every_secret_among_many_and_the_longest_first() -> None:
    """One look-up per character: a process that knows thousands of secrets still redacts
    each log line in a moment (a regular expression of every secret took 26 ms a line with
    20,000 and half a second to rebuild for each new one)."""
    many = [f"tenant-secret-{n:06d}-value" for n in range(5000)]
    remember_secrets(many)
    remember_secrets(["tenant-secret-000001", "tenant-secret-000001-value-and-more"])
    line = f"a {many[0]} b {many[4999]} c tenant-secret-000001-value-and-more d"
    assert redact_secrets(line) == "a [redacted] b [redacted] c [redacted] d"
    assert redact_secrets("tenant-secret-000001") == "[redacted]"
    assert redact_secrets("short") == "short"
