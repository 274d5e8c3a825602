"""No URL secret reaches a log line."""

from __future__ import annotations

import logging

import pytest

from auditstream.log_setup import UrlRedactingFilter, redact_urls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("POST https://siem.example.com/in?token=s3cret ok", "POST https://siem.example.com/… ok"),
        ("https://user:pw@host.example.com:8443/x", "https://host.example.com:8443/…"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/"),
        (
            "at 'https://h.example.com/services/T0/B0/XyZ' failed",
            "at 'https://h.example.com/…' failed",
        ),
        ("no url here", "no url here"),
        (
            "two: http://a.example.com/p?q=1 and https://b.example.com#frag",
            "two: http://a.example.com/… and https://b.example.com/…",
        ),
    ],
)
def test_redact_urls(text: str, shown: str) -> None:
    assert redact_urls(text) == shown


def test_the_filter_rewrites_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("POST", "https://h.example.com/x?token=abc"),
        None,
    )
    try:
        raise RuntimeError("refused https://u:p@h.example.com/?sig=abc")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert UrlRedactingFilter().filter(record)
    assert "abc" not in record.getMessage()
    assert record.exc_text is not None
    assert "abc" not in record.exc_text
    assert "u:p" not in record.exc_text
