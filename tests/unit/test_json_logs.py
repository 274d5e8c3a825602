"""JSON log lines: one object per line with time, level, logger, message and the ids a log
call passes; URLs and secrets redacted as in the text format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from auditstream.config.secrets import forget_secrets, remember_secrets
from auditstream.log_setup import JsonFormatter, UrlRedactingFilter, log_format

PASSWORD = "kafka-pass-0123456789"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(UrlRedactingFilter())
    logger = logging.getLogger("auditstream.test_json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    remember_secrets([PASSWORD])
    yield logger, out
    logger.removeHandler(handler)
    logger.propagate = True
    forget_secrets()


def _objects(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_object_per_line_with_the_ids_passed(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    logger.info("delivered %d events", 12, extra={"account_id": "acme", "destination_id": "d1"})
    logger.warning("no ids\nsecond line")
    first, second = _objects(out)
    assert first["level"] == "INFO"
    assert first["logger"] == "auditstream.test_json_logs"
    assert first["message"] == "delivered 12 events"
    assert (first["account_id"], first["destination_id"]) == ("acme", "d1")
    assert first["time"].endswith("+00:00")
    assert second["message"] == "no ids\nsecond line"
    assert "account_id" not in second


def test_urls_and_secrets_are_redacted(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    logger.error(
        "POST %s failed; sasl password %s",
        "https://siem.example.com/in?token=tok-abcdef123456",
        PASSWORD,
        extra={"account_id": "acme"},
    )
    try:
        raise RuntimeError(f"login {PASSWORD} refused at https://u:pw@h.example.com/?sig=zz")
    except RuntimeError:
        logger.exception("broker refused")
    text = out.getvalue()
    assert PASSWORD not in text
    assert "tok-abcdef123456" not in text
    assert "sig=zz" not in text
    assert "u:pw" not in text
    error, failure = _objects(out)
    assert error["message"] == "POST https://siem.example.com/… failed; sasl password [redacted]"
    assert (
        "RuntimeError: login [redacted] refused at https://h.example.com/…"
        in (failure["exception"])
    )


def test_the_format_from_the_flag_or_the_environment() -> None:
    assert log_format(None, {}) == "text"
    assert log_format(None, {"AUDITSTREAM_LOG_FORMAT": "JSON"}) == "json"
    assert log_format("text", {"AUDITSTREAM_LOG_FORMAT": "json"}) == "text"
    with pytest.raises(ValueError, match="AUDITSTREAM_LOG_FORMAT='yaml': use one of text, json"):
        log_format(None, {"AUDITSTREAM_LOG_FORMAT": "yaml"})
