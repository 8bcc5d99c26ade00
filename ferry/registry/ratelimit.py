"""What a registry's answers say about its rate limit: how long to hold off before asking again.

Read from any answer, successful or not:

* ``RateLimit-Remaining`` (the IETF RateLimit header fields; Docker Hub writes ``0;w=21600``):
  while it is above 0, nothing to hold off. At 0, hold off for ``RateLimit-Reset`` seconds when
  given, else ``Retry-After``, else the policy's window ``w``, else :data:`DEFAULT_HOLD`.
* A ``Retry-After`` on a 429 is the retry layer's (``ferry.registry.retry``), not this module's.

Every hold is capped at :data:`MAX_HOLD`. :class:`RateLimitWatch` is what one client remembers of
them. May be imported by ``ferry/registry`` and ``ferry/sync``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ferry.errors import FerryError
from ferry.registry.retry import parse_retry_after

DEFAULT_HOLD = 60.0
MAX_HOLD = 6 * 3600.0


def _leading_number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value.split(";", 1)[0].split(",", 1)[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _window(value: str | None) -> float | None:
    for part in (value or "").split(";")[1:]:
        key, _, number = part.strip().partition("=")
        if key.strip().lower() == "w":
            return _leading_number(number)
    return None


def hold_off(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before the next request when the registry says none are left; None otherwise.
    ``headers`` is looked up case-insensitively when it is httpx's; give lower-case keys otherwise."""
    remaining_header = headers.get("ratelimit-remaining")
    remaining = _leading_number(remaining_header)
    if remaining is None or remaining > 0:
        return None
    for seconds in (_leading_number(headers.get("ratelimit-reset")),
                    parse_retry_after(headers.get("retry-after")), _window(remaining_header)):
        if seconds is not None and seconds >= 0:
            return min(seconds, MAX_HOLD)
    return DEFAULT_HOLD


@dataclass
class RateLimitWatch:
    """What one client's answers said about waiting.

    ``hold_off``: seconds to hold off before the next request, when the last answer said none are
    left. ``asked_to_wait``: the ``Retry-After`` seconds error answers asked for, in all;
    ``max_asked_wait`` how many the client lets the retry layer wait in-process (None: each
    operation's budget alone). Past it, an answer asking to wait ends its operation at once, keeping
    ``retry_after`` for a caller that waits without holding compute (ferry.sync.tick's durable hold).
    """

    hold_off: float | None = None
    asked_to_wait: float = 0.0
    max_asked_wait: float | None = None

    def answered(self, headers: Mapping[str, str]) -> None:
        self.hold_off = hold_off(headers)

    def asked(self, error: FerryError, retry_after: float | None) -> None:
        """Count an error answer's ``Retry-After``; past ``max_asked_wait`` the error is not retried."""
        if retry_after is None:
            return
        self.asked_to_wait += retry_after
        if self.max_asked_wait is not None and self.asked_to_wait > self.max_asked_wait:
            error.transient = False  # not waited here: retry_after says when to ask again
