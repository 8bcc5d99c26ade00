"""rechunk and blocks regroup a stream into fixed-size pieces: one copy of each byte at most, or none."""

from __future__ import annotations

import random

import pytest

from ferry.streams import blocks, rechunk


@pytest.mark.parametrize("seed", range(40))
def test_rechunk_keeps_every_byte_in_order_and_sizes_exact(seed):
    rng = random.Random(seed)
    size = rng.choice([1, 3, 16, 100, 4096])
    chunks = [rng.randbytes(rng.randint(0, 300)) for _ in range(rng.randint(0, 30))]
    pieces = list(rechunk(iter(chunks), size))
    assert b"".join(pieces) == b"".join(chunks)
    assert all(type(p) is bytes for p in pieces)
    assert all(len(p) == size for p in pieces[:-1])
    assert not pieces or 0 < len(pieces[-1]) <= size


def test_a_chunk_that_is_a_whole_block_passes_through_uncopied():
    block = bytes(range(256)) * 4
    pieces = list(rechunk(iter([block, b"ab", b"c" * 1022, block]), 1024))
    assert pieces[0] is block and pieces[2] is block
    assert pieces[1] == b"ab" + b"c" * 1022


def test_an_error_in_the_stream_stops_before_the_block_it_would_complete():
    def stream():
        yield b"x" * 1500
        raise ValueError("corrupt")

    pieces = rechunk(stream(), 1000)
    assert next(pieces) == b"x" * 1000
    with pytest.raises(ValueError):
        next(pieces)


@pytest.mark.parametrize("seed", range(20))
def test_blocks_hold_views_of_the_chunks_read_not_copies(seed):
    rng = random.Random(seed)
    size = rng.choice([1, 5, 64, 1000])
    chunks = [rng.randbytes(rng.randint(0, 300)) for _ in range(rng.randint(0, 30))]
    found = list(blocks(iter(chunks), size))
    assert b"".join(bytes(p) for b in found for p in b.parts) == b"".join(chunks)
    assert all(len(b) == size for b in found[:-1]) and (not found or 0 < len(found[-1]) <= size)
    assert all(any(p.obj is c for c in chunks) for b in found for p in b.parts)  # views of what was read
    for block in found:
        skip = rng.randint(0, len(block))
        assert b"".join(bytes(p) for p in block.tail(skip)) == b"".join(bytes(p) for p in block.parts)[skip:]
