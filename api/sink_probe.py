"""Building a destination's sink once, to refuse settings that cannot work together before they
are stored (the destination check, ``sinks.check``, is the thorough, networked version)."""

from __future__ import annotations

import logging
from pathlib import Path

from auditstream.api.errors import Invalid
from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.sinks.factory import build_sink

log = logging.getLogger(__name__)


def probe_sink(destination: Destination, local_root: Path | None) -> None:
    """Build and close ``destination``'s sink. Raises :class:`Invalid` if the settings cannot
    make a sink; a vendor client refusing for any other reason is only logged (the worker will
    say more)."""
    try:
        sink = build_sink(destination, local_root=local_root)
    except ConfigError as exc:
        raise Invalid([(["body"], str(exc), "invalid_settings")]) from None
    except Exception:  # a vendor client refusing early: the worker will say more
        log.warning("destination %s: sink could not be built for a probe", destination.id)
        return
    try:
        sink.close()
    except Exception:  # closing a probe must not fail the request
        log.debug("closing a probe sink failed", exc_info=True)
