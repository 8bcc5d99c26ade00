"""Unit tests start no service: any attempt to reach or serve a network address fails the test.

Local socket pairs (asyncio's self-pipe) stay allowed; ``connect``/``bind`` on an INET socket and
``socket.create_connection`` raise (`tests.netguard`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.netguard import forbid_network


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    forbid_network(monkeypatch, request.node.nodeid, "in a unit test (tests/unit starts no service)")
    yield
