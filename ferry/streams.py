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


def blocks(stream: Iterator[bytes], size: int) -> Iterator[Block]:
    """Regroup ``stream`` into blocks of exactly ``size`` bytes (the last may be shorter), without
    copying a byte: each block is the list of views of the chunks (or parts of chunks) it holds."""
    parts: list[memoryview] = []
    held = 0
    for chunk in stream:
        view = memoryview(chunk)
        while held + len(view) >= size:
            parts.append(view[:size - held])
            view = view[size - held:]
            yield Block(parts)
            parts, held = [], 0
        if view:
            parts.append(view)
            held += len(view)
    if parts:
        yield Block(parts)


class Block:
    """Bytes held as views of the chunks they came in (see :func:`blocks`)."""

    def __init__(self, parts: list[memoryview]) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)

    def __len__(self) -> int:
        return self.size

    def tail(self, skip: int) -> list[memoryview]:
        """The views of the block's bytes from ``skip`` on."""
        out: list[memoryview] = []
        for part in self.parts:
            if skip >= len(part):
                skip -= len(part)
                continue
            out.append(part[skip:])
            skip = 0
        return out
