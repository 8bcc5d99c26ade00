"""How long a registry's answer says to hold off (ferry.registry.ratelimit): IETF RateLimit fields,
Docker Hub's ``N;w=SECONDS``, Retry-After, and hostile values capped or ignored."""

from __future__ import annotations

import pytest

from ferry.registry.ratelimit import DEFAULT_HOLD, MAX_HOLD, hold_off
from ferry.registry.retry import parse_retry_after


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None),
    ({"ratelimit-remaining": "5"}, None),
    ({"ratelimit-remaining": "100;w=21600"}, None),                     # Docker Hub, some left
    ({"ratelimit-remaining": "0;w=21600"}, 21600.0),                    # Docker Hub, none left: the window
    ({"ratelimit-remaining": "0", "ratelimit-reset": "42"}, 42.0),      # IETF draft: the reset
    ({"ratelimit-remaining": "0;w=60", "ratelimit-reset": "7"}, 7.0),   # the reset beats the window
    ({"ratelimit-remaining": "0", "retry-after": "30"}, 30.0),
    ({"ratelimit-remaining": "0"}, DEFAULT_HOLD),                       # none left, no hint: a minute
    ({"ratelimit-remaining": "0", "ratelimit-reset": "99999999999"}, MAX_HOLD),  # capped
    ({"ratelimit-remaining": "0", "ratelimit-reset": "-5"}, DEFAULT_HOLD),       # nonsense ignored
    ({"ratelimit-remaining": "lots"}, None),                            # unreadable: not a reason to stop
    ({"ratelimit-remaining": "0", "ratelimit-reset": "soon"}, DEFAULT_HOLD),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "nan", "retry-after": "inf"}, DEFAULT_HOLD),  # not numbers
    ({"ratelimit-remaining": "nan"}, None),
    ({"ratelimit-remaining": "-inf"}, None),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "inf"}, DEFAULT_HOLD),
])
def test_hold_off(headers, expected):
    assert hold_off(headers) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), ("0", 0.0), ("nan", None), ("inf", None), ("-5", None), ("soon", None), (None, None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
])
def test_retry_after(value, expected):
    assert parse_retry_after(value) == expected
