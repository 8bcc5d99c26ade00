"""A scheduled incremental transfer: a sync whose target is an archive container. Two ticks with one
new tag between them: the second archive carries only the new blobs, and importing both archives
in order on the other side gives every tag byte-exact."""

from __future__ import annotations

import json
import uuid

from azure.storage.blob import BlobServiceClient

from tests.flows.test_sync_story import SECRET, receiver  # noqa: F401
from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


def test_two_ticks_carry_only_what_is_new(registry, registry_b, azurite, tmp_path, capsys, monkeypatch,
                                          receiver):  # noqa: F811
    container = f"incr-{uuid.uuid4().hex[:8]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string("acct1"))
    base = c.random_layer(200_000, 9001)
    v1 = c.oci_image([base, c.random_layer(20_000, 9002)], env=["BACKGROUND_COLOR=Blue"], seed=1)
    v2 = c.oci_image([base, c.random_layer(30_000, 9003)], env=["BACKGROUND_COLOR=Blue"], seed=2)
    c.push(registry.url, "app/service", v1, tag="1.0.0")
    url = f"{azurite.blob_endpoint('acct1')}/{container}"
    sync_file = tmp_path / "incr.json"
    sync_file.write_text(json.dumps({"name": "incr-sync", "properties": {
        "source": {"registryUri": registry.host, "repository": "app/service"},
        "tags": {"semver": ">=1.0.0"},
        "target": {"archive": {"type": "AzureStorageBlobContainer", "uri": url,
                               "storageAccessMode": "ConnectionString"}},
        "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}],
        "notifications": {"webhooks": [{"uri": receiver.server.url, "secret": SECRET}]}}}))

    def tick(run_id: str) -> dict:
        result = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", run_id, "--json")
        assert result.code == 0, result.out + result.err
        return result.json()

    first = tick("t1")
    assert [t["status"] for t in first["tags"]] == ["promoted"]
    c.push(registry.url, "app/service", v2, tag="1.1.0")
    second = tick("t2")
    assert {t["tag"]: t["status"] for t in second["tags"]} == {"1.0.0": "unchanged", "1.1.0": "promoted"}
    # Notified per tag, the archive named; the bytes are the archive's, on the run (not split per tag).
    events = [event for event, _ in receiver.events]
    assert [(e["type"], e["data"]["target"]["digest"]) for e in events] == [
        ("ferry.image.promoted", v1.digest), ("ferry.image.promoted", v2.digest)]
    assert events[1]["data"]["archive"] == f"{url}/incr-sync-t2.tar" and events[1]["data"]["registry"] is None
    assert 30_000 < second["archive_bytes"] < first["archive_bytes"] and second["archive"].endswith("incr-sync-t2.tar")
    assert all(t["bytes_moved"] == 0 for t in first["tags"] + second["tags"])

    archives = {run: f"{url}/incr-sync-{run}.tar" for run in ("t1", "t2")}
    carried = {run: set(run_ferry(capsys, "inspect", a, "--json").json()["blob_digests"])
               for run, a in archives.items()}
    new_in_v2 = {b.digest for b in v2.blobs} - {b.digest for b in v1.blobs}
    assert base.digest in carried["t1"] and base.digest not in carried["t2"]  # shared layer shipped once
    assert new_in_v2 <= carried["t2"]
    assert not carried["t2"] & {b.digest for b in v1.blobs}

    # The other side imports the archives in order.
    for run in ("t1", "t2"):
        imported = run_ferry(capsys, "import", archives[run], "--to", registry_b.host)
        assert imported.code == 0, imported.out + imported.err
    assert skopeo_raw(registry_b.host, "app/service", "1.0.0") == v1.raw
    assert skopeo_raw(registry_b.host, "app/service", "1.1.0") == v2.raw


def test_a_sync_into_an_export_pipeline_reads_it_from_pipelines_dir(registry, azurite, tmp_path, capsys,
                                                                    monkeypatch):
    container = f"incr-{uuid.uuid4().hex[:8]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string("acct1"))
    url = f"{azurite.blob_endpoint('acct1')}/{container}"
    image = c.oci_image([c.random_layer(20_000, 9011)], env=["BACKGROUND_COLOR=Blue"], seed=3)
    c.push(registry.url, "app/piped", image, tag="1.0.0")
    (tmp_path / "exportPipelines").mkdir()
    (tmp_path / "exportPipelines" / "outbox.json").write_text(json.dumps({"properties": {
        "source": {"registryUri": registry.host},
        "target": {"type": "AzureStorageBlobContainer", "uri": url, "storageAccessMode": "ConnectionString"}}}))
    sync_file = tmp_path / "piped.json"
    sync_file.write_text(json.dumps({"name": "piped-sync", "properties": {
        "source": {"registryUri": registry.host, "repository": "app/piped"},
        "tags": {"semver": ">=1.0.0"}, "target": {"exportPipeline": "outbox"}}}))
    missing = run_ferry(capsys, "sync", str(sync_file), "--once")
    assert missing.code == 2 and "targets export pipeline 'outbox': give --pipelines DIR" in missing.err
    unknown = run_ferry(capsys, "sync", str(sync_file), "--once", "--pipelines", str(tmp_path / "nowhere"))
    assert unknown.code != 0 and "pipeline 'outbox' is not in" in unknown.err
    done = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "p1", "--pipelines", str(tmp_path), "--json")
    assert done.code == 0, done.err
    assert [t["promoted"] for t in done.json()["tags"]] == [[f"{url}/piped-sync-p1.tar"]]
    [artifact] = run_ferry(capsys, "inspect", f"{url}/piped-sync-p1.tar", "--json").json()["artifacts"]
    assert (artifact["name"], artifact["digest"]) == ("app/piped:1.0.0", image.digest)
