"""rechunk regroups a stream into fixed-size pieces, copying each byte once at most."""

from __future__ import annotations

import random

import pytest

from ferry.streams import rechunk


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
