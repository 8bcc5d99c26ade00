"""Helpers for byte streams (iterators of ``bytes``)."""

from __future__ import annotations

from collections.abc import Iterator


def rechunk(stream: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Regroup ``stream`` into pieces of exactly ``size`` bytes (the last may be shorter).

    Each byte is copied once at most: the pieces of a block are held as ``memoryview`` slices of
    the chunks they come from and joined when the block is complete; a chunk that is a whole block
    by itself passes through as it is.
    """
    parts: list[bytes | memoryview] = []
    held = 0
    for chunk in stream:
        if not parts and len(chunk) == size:
            yield chunk
            continue
        view = memoryview(chunk)
        while held + len(view) >= size:
            parts.append(view[:size - held])
            view = view[size - held:]
            yield b"".join(parts)
            parts, held = [], 0
        if view:
            parts.append(view)
            held += len(view)
    if parts:
        yield b"".join(parts)
