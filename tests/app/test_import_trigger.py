"""The import blob trigger, called as the worker calls it with the SDK-type binding (a BlobClient of a
real Azurite blob, whose content the trigger must never read) and the local durable client: it starts
one import per enabled pipeline per blob version, and ignores the rest."""

from __future__ import annotations

import asyncio
import json
import uuid

import azure.functions as func
import pytest
from azure.storage.blob import BlobClient, BlobServiceClient

import function_app
from runner import LocalDurableClient, LocalOrchestrationRunner
from runner.client import acall_client_function
from tests.harness import content as c
from tests.helpers import app_functions, run_ferry, skopeo_raw

FUNCTIONS = app_functions()


@pytest.fixture
def env(azurite, registry_b, monkeypatch):
    """App storage in acct1 (tables, claims); archives land in a container of acct2."""
    container = f"landing-{uuid.uuid4().hex[:8]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string("acct2"))
    service.create_container(container)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")  # the test services; hostile hosts stay refused
    monkeypatch.setenv("FERRY_IMPORT_STORAGE", azurite.connection_string("acct2"))
    monkeypatch.setenv("FERRY_STORAGE_CONNECTION_STRINGS", json.dumps([azurite.connection_string("acct2")]))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)

    class Env:
        name = container
        url = f"{azurite.blob_endpoint('acct2')}/{container}"
        connection = azurite.connection_string("acct2")

        @staticmethod
        def blob(name: str):
            return service.get_blob_client(container, name)

    return Env


def put_import_pipeline(name: str, env, registry_b, *, enabled: bool = True, prefix: str = "landed") -> None:
    body = {"properties": {"source": {"type": "AzureStorageBlobContainer", "uri": env.url,
                                      "storageAccessMode": "ConnectionString"},
                           "target": {"registryUri": registry_b.host, "repositoryPrefix": prefix},
                           "trigger": {"sourceTrigger": {"status": "Enabled" if enabled else "Disabled"}}}}
    req = func.HttpRequest(method="PUT", url=f"http://localhost/api/importPipelines/{name}",
                           body=json.dumps(body).encode(), route_params={"name": name})
    response = FUNCTIONS["import_pipeline_put"].get_user_function()(req)
    assert response.status_code in (200, 201), response.get_body()


class UnreadBlob(BlobClient):
    """What the worker hands the trigger (an SDK-type binding): a BlobClient. Reading the content
    through it fails the test: the trigger must start imports from properties alone."""

    def download_blob(self, *args, **kwargs):
        raise AssertionError("the trigger read the archive's content")


def fire(env, blob: str, client) -> None:
    archive = UnreadBlob.from_connection_string(env.connection, env.name, blob)
    asyncio.run(acall_client_function(FUNCTIONS["import_trigger"], client=client, archive=archive))


def runs_for(runner) -> list:
    return [i for i in runner.instances() if i.name == "pipeline_run"]


def test_archive_landing_starts_one_import_per_version(env, registry, registry_b, content, tmp_path, capsys):
    name = f"land{uuid.uuid4().hex[:8]}"
    put_import_pipeline(name, env, registry_b, prefix=name)
    put_import_pipeline(f"off{uuid.uuid4().hex[:8]}", env, registry_b, enabled=False)
    c.push(registry.url, "trig/app", content["multiarch"], tag="v1")
    assert run_ferry(capsys, "export", f"{registry.host}/trig/app:v1", "--to", f"{env.url}/a.tar",
                     "--connection-string", env.connection).code == 0
    with LocalOrchestrationRunner(function_app.app) as runner:
        client = LocalDurableClient(runner, wait=True)
        fire(env, "a.tar", client)
        fire(env, "a.tar", client)  # the same version again: no second run
        [run] = runs_for(runner)
        assert run.input["kind"] == "import" and run.input["job"]["source"]["url"] == f"{env.url}/a.tar"
        assert runner.wait(run.instance_id, 60).output["status"] == "Succeeded"
        assert skopeo_raw(registry_b.host, f"{name}/trig/app", "v1") == content["multiarch"].raw
        # A new version of the blob (overwritten) is imported again.
        assert run_ferry(capsys, "export", f"{registry.host}/trig/app:v1", "--to", f"{env.url}/a.tar", "--overwrite",
                         "--connection-string", env.connection).code == 0
        fire(env, "a.tar", client)
        assert len(runs_for(runner)) == 2


def test_non_ferry_blobs_are_ignored_and_bad_metadata_is_reported(env, registry, registry_b, content, capsys):
    name = f"bad{uuid.uuid4().hex[:8]}"
    put_import_pipeline(name, env, registry_b, prefix=name)
    env.blob("notes.txt").upload_blob(b"not an archive")
    c.push(registry.url, "trig/helm", content["helm"], tag="v1")
    assert run_ferry(capsys, "export", f"{registry.host}/trig/helm:v1", "--to", f"{env.url}/t.tar",
                     "--connection-string", env.connection).code == 0
    blob = env.blob("t.tar")
    blob.set_blob_metadata({**blob.get_blob_properties().metadata, "ferryartifacts": "7"})
    with LocalOrchestrationRunner(function_app.app) as runner:
        client = LocalDurableClient(runner, wait=True)
        fire(env, "notes.txt", client)
        assert runs_for(runner) == []
        fire(env, "t.tar", client)
        [run] = runs_for(runner)
        output = runner.wait(run.instance_id, 60).output
    assert output["status"] == "Failed" and "7" in output["pipelineRunErrorMessage"]
    assert c.list_tags(registry_b.url, f"{name}/trig/helm") == []


def test_trigger_metadata_follows_app_settings():
    function = FUNCTIONS["import_trigger"]
    trigger = function.get_trigger()
    binding = trigger.get_dict_repr()
    assert binding["type"] == "blobTrigger"
    assert binding["path"] == "%FERRY_IMPORT_BLOB_PATH%"
    assert binding["connection"] == "FERRY_IMPORT_STORAGE"
    assert binding["source"] in ("LogsAndContainerScan", "EventGrid")
    assert any(b.get_dict_repr()["type"] == "durableClient" for b in function.get_bindings())
