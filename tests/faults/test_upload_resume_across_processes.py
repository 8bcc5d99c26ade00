"""An upload cut by a dying process resumes in the next one from the offset the registry holds:
the chunked upload's session is remembered (the CLI's SQLite cache, the app's claims), so only the
rest is sent again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ferry.azure.claims import ClaimUploadSessions, MemoryClaimStore
from ferry.blobcache import BlobLocationCache
from ferry.oci.descriptor import Descriptor
from ferry.registry.client import RegistryClient

pytestmark = pytest.mark.fault

KiB, MiB = 1024, 1024 * 1024
SIZE = 3 * MiB


class ProcessDied(BaseException):
    """What a kill looks like from inside: nothing of Ferry's runs after it (not even its cleanup)."""


def opener_for(data: bytes, die_after: int | None = None):
    @contextmanager
    def opener() -> Iterator[Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            for start in range(0, len(data), 64 * KiB):
                if die_after is not None and start >= die_after:
                    raise ProcessDied()
                yield data[start:start + 64 * KiB]
        yield chunks()
    return opener


def client(registry, sessions) -> RegistryClient:
    return RegistryClient(registry.host, chunk_size=256 * KiB, monolithic_limit=512 * KiB, sessions=sessions)


@pytest.mark.parametrize("store", ["sqlite", "claims"])
def test_the_next_process_sends_only_what_the_registry_lacks(registry, tmp_path, store, figures):
    sessions = (BlobLocationCache(tmp_path / "cache.sqlite3") if store == "sqlite"
                else ClaimUploadSessions(MemoryClaimStore(), "runs/r1/uploads"))
    data = os.urandom(SIZE)
    descriptor = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), SIZE)
    repository = f"resume/{store}"
    with client(registry, sessions) as first, pytest.raises(ProcessDied):
        first.push_blob(repository, descriptor, opener_for(data, die_after=2 * MiB))
    key = f"{registry.host}/{repository}@{descriptor.digest}"
    assert sessions.get(key), "the session was not remembered"
    with client(registry, sessions) as second:
        sent = second.push_blob(repository, descriptor, opener_for(data))
        assert second.has_blob(repository, descriptor.digest, size=SIZE)
    resent_before, resent_now = SIZE, sent  # without the session, every byte went again
    figures.record("bytes re-sent", f"chunked upload, process killed at 2 MiB ({store} sessions)", resent_now,
                   of=SIZE)
    assert resent_now <= SIZE - MiB, f"sent {resent_now} of {SIZE} again"
    assert resent_now < resent_before
    assert sessions.get(key) is None  # done: nothing left to resume


def test_a_session_the_registry_no_longer_has_starts_afresh(registry, tmp_path):
    sessions = BlobLocationCache(tmp_path / "cache.sqlite3")
    data = os.urandom(SIZE)
    descriptor = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), SIZE)
    sessions.put(f"{registry.host}/resume/stale@{descriptor.digest}",
                 f"{registry.url}/v2/resume/stale/blobs/uploads/00000000-0000-0000-0000-000000000000?_state=x")
    with client(registry, sessions) as fresh:
        assert fresh.push_blob("resume/stale", descriptor, opener_for(data)) == SIZE
        assert fresh.has_blob("resume/stale", descriptor.digest, size=SIZE)
