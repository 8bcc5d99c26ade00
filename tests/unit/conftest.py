"""Unit tests start no service: any attempt to reach or serve a network address fails the test.

Local socket pairs (asyncio's self-pipe) stay allowed; ``connect``/``bind`` on an INET socket and
``socket.create_connection`` raise.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

_NETWORK = (socket.AF_INET, socket.AF_INET6)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    def fail(what: str) -> None:
        raise RuntimeError(f"{request.node.nodeid}: {what} in a unit test (tests/unit starts no service)")

    for name in ("connect", "connect_ex", "bind"):
        original = getattr(socket.socket, name)

        def guarded(self: socket.socket, *args: Any, _original: Any = original, _name: str = name) -> Any:
            if self.family in _NETWORK:
                fail(f"socket.{_name}{args}")
            return _original(self, *args)

        monkeypatch.setattr(socket.socket, name, guarded)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> None:
        fail(f"socket.create_connection({address!r})")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield
