"""An archive's tar headers are walked once per blob version (issue 11): every Durable activity of an
import opened the archive and walked them again (869 ranged GETs at 3000 artifacts). The cache is
keyed by URL *and* ETag, so a blob replaced between two opens is walked again and read as it is now.
On real Azurite and a real registry; the storage client's pool, under many threads, on Azurite too."""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from ferry.archive import scans
from ferry.azure.blob import BlobLocation, ConnectionStringAuth, blob_client, clear_client_cache
from ferry.azure.budget import CONCURRENT_ACTIVITIES, POOL_SIZE, THREADS_PER_ACTIVITY
from ferry.jobs.spec import JobOptions
from ferry.transports.archive import open_source
from tests.harness import content as c
from tests.helpers import run_ferry


@pytest.fixture
def container(azurite):
    name = f"scans-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(name)
    return name


def test_a_scan_is_reused_for_one_etag_and_redone_for_another(azurite, registry, container, capsys):
    cs = azurite.connection_string("acct1")
    url = f"{azurite.blob_endpoint('acct1')}/{container}/scans.tar"
    for tag, seed in (("v1", 91), ("v2", 92)):
        c.push(registry.url, "scans/app", c.oci_image([c.random_layer(800, seed)], seed=seed), tag=tag)
    exported = run_ferry(capsys, "export", f"{registry.host}/scans/app:v1", "--to", url, "--connection-string", cs)
    assert exported.code == 0, exported.err
    scans.forget()
    walks = scans.walks
    with open_source(url, connection_strings=[cs]) as first:
        assert first.index.names() == ["scans/app:v1"]
    with open_source(url, connection_strings=[cs]) as again:  # same ETag: no header walk, same tables
        assert again.index is first.index and again.members is first.members
    assert scans.walks == walks + 1
    # Another export replaces the blob: a new ETag, so the next open walks the new archive.
    replaced = run_ferry(capsys, "export", f"{registry.host}/scans/app:v2", "--to", url, "--connection-string", cs,
                         "--overwrite")
    assert replaced.code == 0, replaced.err
    with open_source(url, connection_strings=[cs]) as now:
        assert now.index.names() == ["scans/app:v2"] and now.reader.version != first.reader.version
    assert scans.walks == walks + 2


def test_the_storage_pool_holds_every_thread_that_shares_a_client(azurite, container, caplog):
    """Clients are pooled per account for the process: as many threads as may share one at once
    (activities times blob workers) reuse their connections instead of dropping them."""
    cs = azurite.connection_string("acct1")
    location = BlobLocation.parse(f"{azurite.blob_endpoint('acct1')}/{container}/pool.bin")
    clear_client_cache()
    client = blob_client(location, ConnectionStringAuth((cs,)))
    client.upload_blob(b"x" * 1024)
    threads = 48  # 10 (the SDK's own pool) dropped connections here
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(lambda _: len(client.download_blob().readall()), range(threads * 6)))
    assert set(sizes) == {1024}
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    clear_client_cache()


def test_the_pool_is_sized_to_the_host_s_activities_and_their_threads():
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["durableTask"]["maxConcurrentActivityFunctions"] <= CONCURRENT_ACTIVITIES
    assert JobOptions().parallelism + 4 <= THREADS_PER_ACTIVITY  # blob workers + an archive's staging threads
    assert POOL_SIZE >= CONCURRENT_ACTIVITIES * THREADS_PER_ACTIVITY
