"""A guard for tests that must open no network connection: ``connect``/``bind`` on an INET socket
and ``socket.create_connection`` raise (local socket pairs, such as asyncio's self-pipe, stay
allowed). tests/unit applies it to every test; tests/faults to the modules that start no service,
where it also proves that a refusal happened before any socket was opened."""

from __future__ import annotations

import socket
from typing import Any

import pytest

_NETWORK = (socket.AF_INET, socket.AF_INET6)


def forbid_network(monkeypatch: pytest.MonkeyPatch, who: str, why: str) -> None:
    """Make every network connection or bind fail with ``"<who>: <call> <why>"`` until `monkeypatch` undoes it."""

    def fail(what: str) -> None:
        raise RuntimeError(f"{who}: {what} {why}")

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
