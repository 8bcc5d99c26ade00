"""The sync state in Table storage (Azurite) is written only over the version it read: a tick
whose sync was deleted under it does not bring the state back, and one that lost a race to
another writer stops instead of overwriting it."""

from __future__ import annotations

import uuid

import pytest

from ferry.errors import ConflictError
from ferry.settings import StorageConnection
from ferry.sync.state import TagState
from ferry.sync.stored import STATE, TableSyncState
from ferry.transfer.store import ResourceStore

DIGEST = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def write_every_change(monkeypatch):
    """State written at every set_tag, as a tick does once SAVE_EVERY has passed."""
    monkeypatch.setattr("ferry.sync.state.SAVE_EVERY", 0.0)


@pytest.fixture
def store(azurite):
    return ResourceStore.from_connection(StorageConnection("StateTest", azurite.connection_string("acct1")))


def test_a_state_deleted_under_a_tick_is_not_brought_back(store):
    name = f"st{uuid.uuid4().hex[:8]}"
    state = TableSyncState(store, name)
    state.set_tag("v1", TagState(DIGEST, "promoted", "sha256:p"))
    assert store.delete(STATE, name)
    with pytest.raises(ConflictError, match="changed while this tick ran"):
        state.set_tag("v2", TagState(DIGEST, "promoted", "sha256:p"))
    assert store.find(STATE, name) is None


def test_a_tick_that_lost_a_race_stops_instead_of_overwriting(store):
    name = f"st{uuid.uuid4().hex[:8]}"
    TableSyncState(store, name).set_tag("v1", TagState(DIGEST, "promoted", "sha256:p"))
    first, second = TableSyncState(store, name), TableSyncState(store, name)
    second.set_tag("v2", TagState(DIGEST, "rejected", "sha256:p", ["red"]))
    with pytest.raises(ConflictError):
        first.set_tag("v3", TagState(DIGEST, "promoted", "sha256:p"))
    again = TableSyncState(store, name)
    assert again.tag("v2") is not None and again.tag("v3") is None
    again.set_tag("v3", TagState(DIGEST, "promoted", "sha256:p"))  # a fresh read writes fine
    assert TableSyncState(store, name).tag("v3") is not None
