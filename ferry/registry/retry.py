"""Retry transient registry faults with capped exponential backoff, honouring ``Retry-After``."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ferry.errors import FerryError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries; waits grow from ``base_delay`` doubling up to ``max_delay``."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 60.0)
        return min(self.max_delay, self.base_delay * (2 ** attempt)) * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def with_retries(action: Callable[[], T], policy: RetryPolicy, *, what: str) -> T:
    """Run ``action``; retry while it raises a transient :class:`FerryError`."""
    for attempt in range(policy.attempts):
        try:
            return action()
        except FerryError as exc:
            if not exc.transient or attempt == policy.attempts - 1:
                raise
            wait = policy.delay(attempt, exc.retry_after)
            log.info("retrying %s in %.1fs after: %s", what, wait, exc)
            time.sleep(wait)
    raise AssertionError("unreachable")
