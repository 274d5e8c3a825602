"""Logging for the command line: quiet libraries, and no secret in any log line.

Webhook and collector URLs often carry a token in their query or userinfo
(``https://user:pw@host/path?token=...``); HTTP client libraries log request URLs, and error
messages quote them. Vendor SDKs log request headers at DEBUG (botocore: the access key id and
the session token). :class:`UrlRedactingFilter` rewrites every URL in a record's message to
its scheme, host and port, and replaces every secret of the settings this process has read
(``config.secrets.redact_secrets``), before any handler formats it.

Two formats: human-readable lines (``text``, the default) or one JSON object per line
(``json``: ``--log-format json`` or ``AUDITSTREAM_LOG_FORMAT=json``) with ``time``, ``level``,
``logger``, ``message``, the ``account_id`` and ``destination_id`` a log call passes
(``extra=``) and ``exception`` for a traceback; both redacted alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from auditstream.config.secrets import redact_secrets

_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<authority>[^\s/?#'\"<>]*)(?P<rest>[^\s'\"<>]*)"
)
ENV_LOG_FORMAT = "AUDITSTREAM_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]
CONTEXT_FIELDS = ("account_id", "destination_id")
"""Attributes a log call may pass (``extra={"account_id": ...}``) that JSON lines carry."""

_NOISY = ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer", "azure", "google")


def redact_urls(text: str) -> str:
    """``text`` with every URL cut to ``scheme://host[:port]`` (``/…`` marks a cut path,
    query or fragment; credentials before ``@`` are dropped)."""

    def cut(match: re.Match[str]) -> str:
        host = match["authority"].rpartition("@")[2]
        rest = "/…" if match["rest"] not in ("", "/") else match["rest"]
        return f"{match['scheme']}{host}{rest}"

    return _URL.sub(cut, text)


class UrlRedactingFilter(logging.Filter):
    """Rewrites URLs (see :func:`redact_urls`) and remembered secrets in the formatted message
    and traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(redact_urls(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_secrets(redact_urls(text))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line. Runs after :class:`UrlRedactingFilter`: the
    message and traceback are already redacted; context fields are redacted here."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = redact_secrets(redact_urls(str(value)))
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = redact_secrets(redact_urls(self.formatException(record.exc_info)))
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def log_format(flag: str | None, environ: dict[str, str] | None = None) -> LogFormat:
    """The format a flag names, else ``AUDITSTREAM_LOG_FORMAT``, else ``text``. Raises
    ``ValueError`` for another value."""
    env = os.environ if environ is None else environ
    value = (flag or env.get(ENV_LOG_FORMAT) or "text").strip().lower()
    if value == "json":
        return "json"
    if value == "text":
        return "text"
    raise ValueError(f"{ENV_LOG_FORMAT}={value!r}: use one of {', '.join(LOG_FORMATS)}")


def configure_logging(*, verbose: bool, fmt: LogFormat = "text") -> None:
    """One stderr handler with URL and secret redaction, lines as ``fmt`` says; libraries'
    request logs only with ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(UrlRedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
