"""``ferry run RUN.json --pipelines DIR``: ACR JSON files run through the orchestrations locally."""

from __future__ import annotations

import json
import uuid

from azure.storage.blob import BlobServiceClient

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


def test_ferry_run_export_then_import_from_acr_json(registry, registry_b, content, azurite, tmp_path,
                                                    monkeypatch, capsys):
    container = f"run-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string("acct1"))
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("FERRY_CLAIMS_DIR", str(tmp_path / "claims"))
    c.push(registry.url, "runcli/app", content["multiarch"], tag="v1")
    c.push_referrer(registry.url, "runcli/app", content["signature"])
    container_url = f"{azurite.blob_endpoint('acct1')}/{container}"
    pipelines = tmp_path / "pipelines"
    (pipelines / "exportPipelines").mkdir(parents=True)
    (pipelines / "exportPipelines" / "myexport.json").write_text(json.dumps({
        "type": "Microsoft.ContainerRegistry/registries/exportPipelines",
        "properties": {"source": {"registryUri": registry.host},
                       "target": {"type": "AzureStorageBlobContainer", "uri": container_url,
                                  "keyVaultUri": "https://vault.example.net/secrets/unused",
                                  "storageAccessMode": "ManagedIdentity"},
                       "options": ["OverwriteBlobs"]}}))
    (pipelines / "myimport.json").write_text(json.dumps({
        "type": "Microsoft.ContainerRegistry/registries/importPipelines",
        "properties": {"source": {"type": "AzureStorageBlobContainer", "uri": container_url,
                                  "storageAccessMode": "ManagedIdentity"},
                       "target": {"registryUri": registry_b.host, "repositoryPrefix": "viarun"},
                       "options": ["OverwriteTags"]}}))
    # ACR parameter files name the pipeline by its full resource id.
    export_run = tmp_path / "export-run.json"
    export_run.write_text(json.dumps({"name": "exportrun1", "properties": {"request": {
        "pipelineResourceId": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/"
                              "registries/myreg/exportPipelines/myexport",
        "artifacts": ["runcli/app:v1"], "target": {"type": "AzureStorageBlob", "name": "run.tar"}},
        "forceUpdateTag": "1"}}))
    result = run_ferry(capsys, "run", str(export_run), "--pipelines", str(pipelines), "--json")
    # storageAccessMode ManagedIdentity over plain-http Azurite is refused with a clear message...
    assert result.code == 1 and "https" in result.json()["properties"]["response"]["pipelineRunErrorMessage"]
    # ...so the local pipelines use connection strings, as local.settings.json would.
    for path in (pipelines / "exportPipelines" / "myexport.json", pipelines / "myimport.json"):
        body = json.loads(path.read_text())
        for block in ("source", "target"):
            if "uri" in body["properties"].get(block, {}):
                body["properties"][block]["storageAccessMode"] = "ConnectionString"
                body["properties"][block].pop("keyVaultUri", None)
        path.write_text(json.dumps(body))
    result = run_ferry(capsys, "run", str(export_run), "--pipelines", str(pipelines), "--json")
    assert result.code == 0, result.out + result.err
    response = result.json()["properties"]["response"]
    assert response["status"] == "Succeeded" and response["importedArtifacts"] == ["runcli/app:v1"]
    import_run = tmp_path / "import-run.json"
    # An ARM template resource: its name is an expression, which is ignored (the file's stem names the run).
    import_run.write_text(json.dumps({"type": "Microsoft.ContainerRegistry/registries/pipelineRuns",
                                      "name": "[concat(parameters('registryName'), '/', parameters('runName'))]",
                                      "properties": {"request": {
        "pipelineResourceId": "myimport", "source": {"type": "AzureStorageBlob", "name": "run.tar"}}}}))
    result = run_ferry(capsys, "run", str(import_run), "--pipelines", str(pipelines))
    assert result.code == 0, result.out + result.err
    assert "run import-run: Succeeded" in result.out
    assert skopeo_raw(registry_b.host, "viarun/runcli/app", "v1") == content["multiarch"].raw


def test_ferry_run_names_missing_pipeline_and_bad_fields(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    run_file = tmp_path / "bad-run.json"
    run_file.write_text(json.dumps({"properties": {"request": {"pipelineResourceId": "nosuchpipe",
                                                               "source": {"name": "x.tar"}}}}))
    result = run_ferry(capsys, "run", str(run_file), "--pipelines", str(tmp_path / "p"))
    assert result.code == 5 and "nosuchpipe" in result.err
    run_file.write_text(json.dumps({"properties": {"request": {"pipelineResourceId": "a/b"}}}))
    result = run_ferry(capsys, "run", str(run_file), "--pipelines", str(tmp_path / "p"))
    assert result.code == 2 and "pipelineResourceId" in result.err
