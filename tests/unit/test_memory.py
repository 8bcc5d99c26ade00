"""The in-memory Source and Destination keep the promises of ferry/transports/base.py; the other unit
tests rely on it, so a fake that accepted bad bytes would make them pass for nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ferry.errors import IntegrityError, NotFoundError
from ferry.transports.base import Destination, Source
from tests.unit.memory import (
    MemoryDestination,
    MemorySource,
    describe,
    image,
    index,
    referrer,
    sha256,
)

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


def opener_of(*chunks: bytes, consumed: list[bytes] | None = None):
    @contextmanager
    def opener() -> Iterator[Iterator[bytes]]:
        def stream() -> Iterator[bytes]:
            for chunk in chunks:
                if consumed is not None:
                    consumed.append(chunk)
                yield chunk
        yield stream()
    return opener


def test_they_satisfy_the_protocols() -> None:
    assert isinstance(MemorySource(), Source)
    assert isinstance(MemoryDestination(), Destination)


def test_builders_compute_real_digests() -> None:
    content = image("a", layers=3, platform=AMD64)
    assert content.digest == sha256(content.raw) and content.descriptor.size == len(content.raw)
    assert all(sha256(data) == digest for digest, data in content.blobs.items())
    assert len(content.blobs) == 4 and content.descriptor.platform == AMD64
    multi = index(content, image("b", platform=ARM64))
    assert [d.digest for d, _ in multi.manifests][-1] == multi.digest
    assert len(multi.manifests) == 3 and len(multi.blobs) == 4 + 3
    assert image("a").digest != image("b").digest


def test_put_blob_stores_verified_bytes() -> None:
    data = b"x" * 20
    destination = MemoryDestination()
    descriptor = describe("application/octet-stream", data)
    assert destination.put_blob("r", descriptor, opener_of(data[:7], data[7:])) == 20
    assert destination.has_blob("r", descriptor) and not destination.has_blob("other", descriptor)
    assert destination.written("blob") == [("r", descriptor.digest)]


@pytest.mark.parametrize(("chunks", "problem"), [
    ((b"x" * 19,), "truncated"),
    ((b"x" * 19, b"y"), "wrong bytes"),
    ((b"x" * 20, b"excess"), "excess"),
])
def test_put_blob_keeps_nothing_on_failure(chunks: tuple[bytes, ...], problem: str) -> None:
    destination = MemoryDestination()
    descriptor = describe("application/octet-stream", b"x" * 20)
    with pytest.raises(IntegrityError):
        destination.put_blob("r", descriptor, opener_of(*chunks))
    assert not destination.has_blob("r", descriptor)
    assert destination.untouched, problem


def test_put_blob_stops_at_the_first_excess_chunk() -> None:
    consumed: list[bytes] = []
    descriptor = describe("application/octet-stream", b"abc")
    with pytest.raises(IntegrityError):
        MemoryDestination().put_blob("r", descriptor, opener_of(b"abcd", b"never", consumed=consumed))
    assert consumed == [b"abcd"]


def test_manifests_need_their_content_first() -> None:
    content = image("a")
    destination = MemoryDestination()
    with pytest.raises(NotFoundError, match="lacks"):
        destination.put_manifest("r", content.descriptor, content.raw)
    with pytest.raises(IntegrityError):
        destination.put_manifest("r", content.descriptor, content.raw + b" ")
    with pytest.raises(NotFoundError):
        destination.set_tag("r", "v1", content.descriptor, content.raw)
    assert destination.untouched


def test_source_reads_what_was_pushed() -> None:
    source = MemorySource()
    content = source.push("app", image("a"), "v1")
    signature = source.push("app", referrer(content))
    assert source.resolve("app", "v1") == content.descriptor
    assert source.resolve("app", content.digest) == content.descriptor
    assert source.fetch_manifest("app", content.descriptor) == content.raw
    assert [d.digest for d in source.referrers("app", content.descriptor)] == [signature.digest]
    assert source.referrers("app", signature.descriptor) == []
    assert source.list_tags("app") == ["v1"] and source.list_tags("nothing") == []
    with pytest.raises(NotFoundError):
        source.resolve("app", "v2")
    with pytest.raises(NotFoundError):
        source.resolve("other", content.digest)


def test_source_stream_fails_on_corrupt_bytes() -> None:
    source = MemorySource()
    content = source.push("app", image("a"), "v1")
    layer_digest = next(iter(content.blobs))
    source.blobs[layer_digest] = source.blobs[layer_digest][:-1] + b"!"
    descriptor = describe("x", content.blobs[layer_digest])
    with pytest.raises(IntegrityError), source.open_blob("app", descriptor) as stream:
        b"".join(stream)
