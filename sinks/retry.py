"""Retry policies, in one place.

Decisions (``is_retryable``) are kept apart from mechanics (backoff): exponential backoff with
full jitter, bounded attempts, and the destination's ``Retry-After`` honoured (capped).

The sink worker never sleeps on a retry: :func:`delay_after_failure` says when a failed batch
may be tried again and the worker's delivery lane waits on a timer, holding no thread.
:func:`call` runs the same policy in place, sleeping between attempts, for callers that have
nothing else to do meanwhile.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from auditstream.sinks.errors import DeliveryError, TransientError
from auditstream.sinks.health import pause_seconds

T = TypeVar("T")

_RETRYABLE_HTTP = frozenset({408, 429})
_DELTA_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def is_retryable(exc: BaseException) -> bool:
    """The default decision over the project's error tree: transient errors only."""
    return isinstance(exc, DeliveryError) and exc.retryable


def is_retryable_status(status: int) -> bool:
    """HTTP statuses worth retrying: 5xx, 408 and 429. Other 4xx never are."""
    return status >= 500 or status in _RETRYABLE_HTTP


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (a decimal fraction is
    accepted too) or an HTTP-date (a date in the past gives 0). ``None`` when absent or
    unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without saying so
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded attempts with full-jitter exponential backoff: the n-th wait is uniform in
    ``[0, min(max_wait, base * 2**n))``; a ``Retry-After`` replaces it, capped at
    ``max_retry_after``."""

    attempts: int = 5
    base: float = 0.2
    max_wait: float = 10.0
    max_retry_after: float = 3600.0

    def wait_seconds(self, attempt: int, exc: BaseException | None) -> float:
        """The wait before attempt ``attempt + 1``: the destination's ``Retry-After`` when
        ``exc`` carries one (capped), else uniform in ``[0, min(max_wait, base * 2**(n-1)))``."""
        asked = retry_after(exc, self.max_retry_after) if exc is not None else None
        if asked is not None:
            return asked
        ceiling = min(self.max_wait, self.base * (2 ** max(0, attempt - 1)))
        return random.uniform(0.0, ceiling)


def retry_after(exc: BaseException, cap: float) -> float | None:
    """The delay the destination asked for (``Retry-After``), capped at ``cap``; None if it
    asked for none."""
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return max(0.0, min(exc.retry_after, cap))
    return None


def delay_after_failure(
    failures: int,
    exc: BaseException,
    *,
    permanent: bool,
    policy: RetryPolicy,
    pause_base: float,
    pause_cap: float,
) -> float:
    """Seconds from now until the next attempt after the ``failures``-th failure in a row.

    Transient failures are first retried quickly (``policy``: full-jitter exponential backoff,
    ``policy.attempts`` attempts in all); after that, and at once for refusals, the wait
    doubles from ``pause_base`` up to ``pause_cap`` (jittered, :func:`health.pause_seconds`),
    counted from the first failure past the quick retries. Never earlier than the
    ``Retry-After`` the destination asked for (capped at ``policy.max_retry_after``).
    """
    if not permanent and failures < policy.attempts:
        delay = policy.wait_seconds(failures, None)
    else:
        slow_failures = failures if permanent else failures - policy.attempts + 1
        delay = pause_seconds(slow_failures, base=pause_base, cap=pause_cap)
    asked = retry_after(exc, policy.max_retry_after)
    return delay if asked is None else max(delay, asked)


def call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool] = is_retryable,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``fn`` until it succeeds, a non-retryable error is raised, or the attempts run out.

    Raises the last exception ``fn`` raised (never tenacity's ``RetryError``).
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.wait_seconds(state.attempt_number, exc)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc, state.next_action.sleep if state.next_action else 0.0)

    kwargs: dict[str, object] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(retryable),
        reraise=True,
        before_sleep=before_sleep,
        **kwargs,  # type: ignore[arg-type]
    )
    return retrying(fn)
