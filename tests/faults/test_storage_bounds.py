"""Bounded storage: a storage endpoint that is gone fails an export in seconds, with its cause,
not after the SDK's minutes of retries."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from tests.harness import content as c
from tests.harness.azurite import find_azurite, start_azurite
from tests.helpers import run_ferry

pytestmark = pytest.mark.fault


def test_a_dead_storage_account_fails_the_export_in_seconds(tmp_path, registry, content, capsys, monkeypatch):
    binary = find_azurite()
    assert binary is not None, "Azurite is not installed"
    dying = start_azurite(tmp_path / "azurite", binary, accounts=("acct1",))
    try:
        BlobServiceClient.from_connection_string(dying.connection_string("acct1")).create_container("gone")
        url, connection = f"{dying.blob_endpoint('acct1')}/gone/a.tar", dying.connection_string("acct1")
    finally:
        dying.stop()
    repo = f"bounds/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["multiarch"], tag="v1")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    started = time.monotonic()
    result = run_ferry(capsys, "export", f"{registry.host}/{repo}:v1", "--to", url, "--connection-string", connection)
    elapsed = time.monotonic() - started
    assert result.code == 3 and "cannot reach storage" in result.err, result.err
    assert elapsed < 30, f"took {elapsed:.1f} s to fail (the SDK's default budget took about 90 s here)"
