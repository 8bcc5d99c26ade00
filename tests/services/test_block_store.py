"""The block-blob store on real Azurite: one large entry's blocks staged several at a time, in order;
verified entries named by nonce and reused by a re-run only when whole."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from ferry.archive import format as fmt
from ferry.archive.stores import BlockBlobStore, block_id
from ferry.errors import IntegrityError
from ferry.streams import rechunk


def test_large_entry_blocks_are_staged_concurrently_and_listed_in_order(azurite):
    service = BlobServiceClient.from_connection_string(azurite.connection_string("acct1"))
    container = f"blocks-{uuid.uuid4().hex[:8]}"
    service.create_container(container)
    client = service.get_blob_client(container, "big.tar")
    data = os.urandom(1_000_000)
    entry = fmt.Entry("blobs/sha256/" + "a" * 64, len(data), 0)
    layout = fmt.ArchivePlan((entry,), fmt.BLOCK + fmt.padded(len(data)) + len(fmt.END_OF_ARCHIVE))
    store = BlockBlobStore(client, "big.tar", block_size=64 * 1024, parallel=4)
    active, peak, lock = 0, 0, threading.Lock()
    real_stage = client.stage_block

    def counting_stage(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)  # long enough for overlap to show if it happens
        try:
            return real_stage(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    client.stage_block = counting_stage  # type: ignore[method-assign]
    store.begin(layout)
    chunks = [data[i:i + 10_000] for i in range(0, len(data), 10_000)]
    assert store.write_entry(entry, chunks) == len(data)
    store.seal({entry.name})
    store.publish({"ferryformat": "1"}, overwrite=False)
    assert peak > 1  # several blocks of the one entry were in flight together
    expected = [block_id(p) for p in rechunk(iter([fmt.tar_header(entry.name, len(data)), data,
                                                  fmt.padding(len(data))]), 64 * 1024)]
    assert store.export_state()["pieces"][entry.name] == expected
    downloaded = client.download_blob().readall()
    assert downloaded[fmt.BLOCK:fmt.BLOCK + len(data)] == data
    assert client.get_blob_properties().metadata == {"ferryformat": "1"}


def _store(client, block_size=64 * 1024):
    return BlockBlobStore(client, "nonce.tar", block_size=block_size, parallel=4)


def _failing(data: bytes, fail_after: int):
    """Yields ``data`` in 10 KB chunks, then raises (a source whose digest check failed) at ``fail_after``."""
    for offset in range(0, len(data), 10_000):
        if offset >= fail_after:
            raise IntegrityError("digest mismatch (test)")
        yield data[offset:offset + 10_000]


def test_verified_entries_are_reused_by_a_rerun_and_failed_ones_never(azurite):
    """Blocks of a verified entry get nonce IDs (no second hash of its bytes); a re-run reuses an
    entry only through the marker staged after its last block, so the blocks a failed entry left
    behind (wrong bytes under the digest's name) are written again, never committed."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string("acct1"))
    container = f"nonce-{uuid.uuid4().hex[:8]}"
    service.create_container(container)
    client = service.get_blob_client(container, "nonce.tar")
    good, bad = os.urandom(300_000), os.urandom(300_000)
    done, failed = fmt.Entry("blobs/sha256/" + "b" * 64, len(good), 0), fmt.Entry("blobs/sha256/" + "c" * 64,
                                                                                     len(bad), 0)
    layout = fmt.ArchivePlan((done, failed), 2 * (fmt.BLOCK + fmt.padded(len(good))) + len(fmt.END_OF_ARCHIVE))
    first = _store(client)
    first.begin(layout)
    assert first.write_entry(done, iter([good]), verified=True) == len(good)
    with pytest.raises(IntegrityError):
        first.write_entry(failed, _failing(bad, 250_000), verified=True)  # three blocks staged, then refused
    markers = [b.id for b in client.get_block_list("uncommitted")[1] if b.id.startswith("m")]
    assert len(markers) == 1 and markers[0].endswith(first._nonce)  # the whole, verified entry's only
    assert all(i.startswith("v") and len(i) == 64 for i in first.export_state()["pieces"][done.name])
    first.abort()

    rerun = _store(client)
    rerun.begin(layout)
    assert rerun.holds(done) and not rerun.holds(failed)
    staged_before = rerun.blocks_staged
    rerun.write_entry(failed, iter([good]), verified=True)  # other bytes this time: all staged anew
    assert rerun.blocks_staged - staged_before == len(rerun.export_state()["pieces"][failed.name]) + 1  # + marker
    assert set(rerun.export_state()["pieces"][failed.name]).isdisjoint(first.export_state()["pieces"].get(
        failed.name, []))
    rerun.seal({done.name, failed.name})
    rerun.publish({}, overwrite=False)
    archive = client.download_blob().readall()
    assert archive[fmt.BLOCK:fmt.BLOCK + len(good)] == good
    second = fmt.BLOCK + fmt.padded(len(good))
    assert archive[second + fmt.BLOCK:second + fmt.BLOCK + len(good)] == good


def test_two_stores_never_share_block_ids_of_a_verified_entry(azurite):
    service = BlobServiceClient.from_connection_string(azurite.connection_string("acct1"))
    container = f"nonce-{uuid.uuid4().hex[:8]}"
    service.create_container(container)
    client = service.get_blob_client(container, "nonce.tar")
    data = os.urandom(200_000)
    entry = fmt.Entry("blobs/sha256/" + "d" * 64, len(data), 0)
    layout = fmt.ArchivePlan((entry,), fmt.BLOCK + fmt.padded(len(data)) + len(fmt.END_OF_ARCHIVE))
    a, b = _store(client), _store(client)
    a.begin(layout)
    b.begin(layout)
    a.write_entry(entry, iter([data]), verified=True)
    b.write_entry(entry, iter([data]), verified=True)
    assert set(a.export_state()["pieces"][entry.name]).isdisjoint(b.export_state()["pieces"][entry.name])
    a.abort()
    b.abort()
