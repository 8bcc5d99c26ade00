"""Helpers for byte streams (iterators of ``bytes``)."""

from __future__ import annotations

from collections.abc import Iterator


def rechunk(stream: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Regroup ``stream`` into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in stream:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
