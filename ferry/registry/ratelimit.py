"""What a registry's answers say about its rate limit: how long to hold off before asking again.

Read from any answer, successful or not:

* ``RateLimit-Remaining`` (the IETF RateLimit header fields; Docker Hub writes ``0;w=21600``):
  while it is above 0, nothing to hold off. At 0, hold off for ``RateLimit-Reset`` seconds when
  given, else ``Retry-After``, else the policy's window ``w``, else :data:`DEFAULT_HOLD`.
* A ``Retry-After`` on a 429 is the retry layer's (``ferry.registry.retry``), not this module's.

Every hold is capped at :data:`MAX_HOLD`. May be imported by ``ferry/registry`` and ``ferry/sync``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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
