"""The block-blob store stages one large entry's blocks several at a time, in order, on real Azurite."""

from __future__ import annotations

import os
import threading
import time
import uuid

from azure.storage.blob import BlobServiceClient

from ferry.archive import format as fmt
from ferry.archive.stores import BlockBlobStore, block_id
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
