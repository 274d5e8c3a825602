"""Logging for the command line: quiet libraries, and no secret in any log line.

Webhook and collector URLs often carry a token in their query or userinfo
(``https://user:pw@host/path?token=...``); HTTP client libraries log request URLs, and error
messages quote them. Vendor SDKs log request headers at DEBUG (botocore: the access key id and
the session token). :class:`UrlRedactingFilter` rewrites every URL in a record's message to
its scheme, host and port, and replaces every secret of the settings this process has read
(``config.secrets.redact_secrets``), before any handler formats it.
"""

from __future__ import annotations

import logging
import re
import sys

from auditstream.config.secrets import redact_secrets

_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<authority>[^\s/?#'\"<>]*)(?P<rest>[^\s'\"<>]*)"
)
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


def configure_logging(*, verbose: bool) -> None:
    """One stderr handler with URL redaction; libraries' request logs only with ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(UrlRedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
