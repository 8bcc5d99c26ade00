"""DeleteSourceBlobOnSuccess deletes only the version that was imported: an archive rewritten
while the import was verifying it is kept, and the output says why."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

import ferry.jobs.phases as phases
from tests.harness import content as c
from tests.helpers import run_ferry

pytestmark = pytest.mark.fault


@pytest.fixture
def blob_target(azurite, monkeypatch):
    container = f"race{uuid.uuid4().hex[:10]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string("acct1"))
    service.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string("acct1"))
    return f"{azurite.blob_endpoint('acct1')}/{container}/a.tar", service.get_blob_client(container, "a.tar")


def rewrite_during_verification(monkeypatch, rewrite):
    real = phases.verify_imported

    def verify_then_rewrite(*args, **kwargs):
        real(*args, **kwargs)
        rewrite()  # another export lands on the same name between the verification and the delete

    monkeypatch.setattr(phases, "verify_imported", verify_then_rewrite)


def test_a_blob_rewritten_during_the_import_is_kept(registry, registry_b, content, blob_target, capsys, monkeypatch):
    url, blob = blob_target
    repo = f"race/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["helm"], tag="v1")
    c.push(registry.url, repo, content["artifact"], tag="v2")
    assert run_ferry(capsys, "export", f"{registry.host}/{repo}:v1", "--to", url).code == 0
    rewrite_during_verification(monkeypatch, lambda: run_ferry(
        capsys, "export", f"{registry.host}/{repo}:v2", "--to", url, "--overwrite"))
    result = run_ferry(capsys, "import", url, "--to", registry_b.host, "--delete-source-on-success", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["deleted_source"] is None and "rewritten" in report["kept_source"]
    assert blob.exists()  # the newer archive, never imported, is still there
    assert f"{repo}:v2" in json.dumps(run_ferry(capsys, "inspect", url, "--json").json())


def test_an_unchanged_blob_is_deleted(registry, registry_b, content, blob_target, capsys):
    url, blob = blob_target
    repo = f"race/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["helm"], tag="v1")
    assert run_ferry(capsys, "export", f"{registry.host}/{repo}:v1", "--to", url).code == 0
    result = run_ferry(capsys, "import", url, "--to", registry_b.host, "--delete-source-on-success", "--json")
    assert result.code == 0 and result.json()["deleted_source"] and not blob.exists()


def test_a_file_rewritten_during_the_import_is_kept(registry, registry_b, content, tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.tar"
    repo = f"race/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["helm"], tag="v1")
    c.push(registry.url, repo, content["docker"], tag="v2")
    assert run_ferry(capsys, "export", f"{registry.host}/{repo}:v1", "--to", str(path)).code == 0
    rewrite_during_verification(monkeypatch, lambda: run_ferry(
        capsys, "export", f"{registry.host}/{repo}:v2", "--to", str(path), "--overwrite"))
    result = run_ferry(capsys, "import", str(path), "--to", registry_b.host, "--delete-source-on-success", "--json")
    assert result.code == 0, result.err
    assert result.json()["deleted_source"] is None and path.exists()
