"""The pipelines API (api/pipelines.py) called as the worker calls it (see tests/app/api.py):
real ``func.HttpRequest`` objects, tables in a real Azurite, the durable client backed by the local
runner and, for importImage by resource id, HTTPS stand-ins of ARM and of the managed identity
endpoint. Hostile and malformed requests are in tests/faults (test_egress, test_api_bad_input).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from ferry.azure.claims import claim_store
from ferry.jobs.spec import ArchiveContents, ArchiveEndpoint, Artifacts, ExportRefs, JobSpec, RegistryEndpoint
from ferry.plan import CopyRequest
from ferry.settings import Settings
from ferry.transfer.store import Record, ResourceStore
from runner.client import LocalDurableClient
from runner.replay import LocalOrchestrationRunner
from tests.app.api import (
    FUNCTION_KEY,
    HOLDS,
    SUB,
    acr_body,
    assert_error,
    call,
    export_run_body,
    get_run,
    import_image,
    js,
    put_export,
    put_import,
    put_run,
)
from tests.harness.arm import ArmStandIn

# --------------------------------------------------------------------------- pipelines


def test_export_pipeline_acr_template_resource_crud(app_env: str, uname: str) -> None:
    created = put_export(uname)
    assert created.status_code == 201, created.get_body()
    resource = js(created)
    assert resource["name"] == uname
    assert resource["type"] == "Microsoft.ContainerRegistry/registries/exportPipelines"
    assert resource["id"].endswith(f"/providers/Microsoft.ContainerRegistry/registries/ferry/exportPipelines/{uname}")
    props = resource["properties"]
    assert props["target"] == {"type": "AzureStorageBlobContainer",
                               "uri": "https://sourcestorage.blob.core.windows.net/transfer",
                               "keyVaultUri": "https://sourcevault.vault.azure.net/secrets/acrexportsas",
                               "storageAccessMode": "SasToken"}
    assert props["options"] == ["OverwriteBlobs"]
    assert props["source"] == {"registryUri": "registry.example.com"}  # FERRY_REGISTRY
    assert props["provisioningState"] == "Succeeded"
    for ignored in ("location", "identity", "apiVersion"):
        assert ignored not in resource and ignored not in props

    got = call("export_pipeline_get", "GET", f"exportPipelines/{uname}", params={"name": uname})
    assert got.status_code == 200 and js(got) == resource
    listed = js(call("export_pipeline_list", "GET", "exportPipelines"))
    assert resource in listed["value"]

    body = acr_body("exportPipeline.json")
    body["properties"]["options"] = ["ContinueOnErrors"]
    body["properties"]["source"] = {"registryUri": "https://other.azurecr.io/"}
    updated = put_export(uname, body)
    assert updated.status_code == 200
    assert js(updated)["properties"]["options"] == ["ContinueOnErrors"]
    assert js(updated)["properties"]["source"] == {"registryUri": "other.azurecr.io"}

    assert call("export_pipeline_delete", "DELETE", f"exportPipelines/{uname}", params={"name": uname}).status_code \
        == 200
    assert_error(call("export_pipeline_get", "GET", f"exportPipelines/{uname}", params={"name": uname}), 404,
                 f"exportPipelines/{uname}")
    assert call("export_pipeline_delete", "DELETE", f"exportPipelines/{uname}", params={"name": uname}).status_code \
        == 204


def test_import_pipeline_acr_template_resource_and_defaults(app_env: str, uname: str) -> None:
    resp = put_import(uname)
    assert resp.status_code == 201, resp.get_body()
    props = js(resp)["properties"]
    assert props["trigger"] == {"sourceTrigger": {"status": "Enabled"}}
    assert props["options"] == ["OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors"]
    assert props["source"]["storageAccessMode"] == "SasToken"
    assert props["target"] == {"registryUri": "registry.example.com", "repositoryPrefix": "", "remap": {}}

    body = acr_body("importPipeline.json")
    body["properties"]["trigger"] = {"sourceTrigger": {"status": "Disabled"}}
    body["properties"]["source"] = {"type": "AzureStorageBlobContainer", "storageAccessMode": "ManagedIdentity",
                                    "uri": "http://127.0.0.1:10000/acct2/transfer"}
    body["properties"]["target"] = {"registryUri": "target.example.com:5443", "repositoryPrefix": "mirror/",
                                    "remap": ["library/nginx=web/nginx"]}
    # The app's managed-identity token is sent over https only.
    assert_error(put_import(uname, body), 400, "properties.source.uri:")
    body["properties"]["source"]["uri"] = "https://acct2.blob.core.windows.net/transfer"
    props = js(put_import(uname, body))["properties"]
    assert props["trigger"]["sourceTrigger"]["status"] == "Disabled"
    assert props["source"] == {"type": "AzureStorageBlobContainer", "storageAccessMode": "ManagedIdentity",
                               "uri": "https://acct2.blob.core.windows.net/transfer"}
    assert props["target"] == {"registryUri": "target.example.com:5443", "repositoryPrefix": "mirror",
                               "remap": {"library/nginx": "web/nginx"}}
    names = [r["name"] for r in js(call("import_pipeline_list", "GET", "importPipelines"))["value"]]
    assert uname in names


def test_pipelines_persist_in_azurite_tables(app_env: str, uname: str) -> None:
    assert put_export(uname).status_code == 201
    assert put_import(uname).status_code == 201
    service = TableServiceClient.from_connection_string(app_env)
    tables = {t.name for t in service.list_tables()}
    assert {"FerryExportPipelines", "FerryImportPipelines"} <= tables
    entity = service.get_table_client("FerryExportPipelines").get_entity("ferry", uname.lower())
    assert entity["name"] == uname
    stored = json.loads(entity["body"])
    assert stored["properties"]["target"]["uri"] == "https://sourcestorage.blob.core.windows.net/transfer"
    # A fresh store (another worker) sees the same resource.
    assert ResourceStore.from_connection_string(app_env).get("importPipelines", uname.upper()).name == uname


def test_store_splits_bodies_over_the_64k_property_limit(app_env: str, uname: str) -> None:
    store = ResourceStore.from_connection_string(app_env)
    artifacts = [f"repo/n{i:05d}-é😀:v{i}" for i in range(4000)]  # ~100k UTF-16 units, with surrogate pairs
    body = {"properties": {"request": {"artifacts": artifacts}}}
    store.put("pipelineRuns", Record(uname, body, {"instanceId": "i-1", "kind": "export"}))
    entity = TableServiceClient.from_connection_string(app_env).get_table_client("FerryPipelineRuns").get_entity(
        "ferry", uname.lower())
    assert entity["bodyParts"] >= 2
    back = store.get("pipelineRuns", uname)
    assert back.body == body
    assert back.fields["instanceId"] == "i-1" and back.fields["kind"] == "export"
    assert store.delete("pipelineRuns", uname) is True
    assert store.find("pipelineRuns", uname) is None


EXPORT_BAD_FIELDS = [
    (lambda b: b["properties"]["target"].__setitem__("uri", "ftp://x/y"), "properties.target.uri"),
    (lambda b: b["properties"]["target"].__setitem__("uri", "https://acct.blob.core.windows.net"),
     "properties.target.uri"),
    (lambda b: b["properties"]["target"].__setitem__("uri", "https://a.blob.core.windows.net/c?sv=1&sig=abc"),
     "properties.target.uri"),
    (lambda b: b["properties"]["target"].pop("uri"), "properties.target.uri"),
    (lambda b: b["properties"]["target"].pop("keyVaultUri"), "properties.target.keyVaultUri"),
    (lambda b: b["properties"]["target"].__setitem__("keyVaultUri", "https://v.vault.azure.net/keys/k"),
     "properties.target.keyVaultUri"),
    (lambda b: b["properties"]["target"].__setitem__("type", "AzureFiles"), "properties.target.type"),
    (lambda b: b["properties"]["target"].__setitem__("storageAccessMode", "Anonymous"),
     "properties.target.storageAccessMode"),
    (lambda b: b["properties"].__setitem__("options", ["OverwriteTags"]), "properties.options[0]"),
    (lambda b: b["properties"].__setitem__("options", "OverwriteBlobs"), "properties.options"),
    (lambda b: b["properties"].__setitem__("source", {"registryUri": "not a host"}), "properties.source.registryUri"),
    (lambda b: b["properties"].__setitem__("source", {"credentials": {"username": "u"}}),
     "properties.source.credentials.password"),
    (lambda b: b["properties"].pop("target"), "properties.target"),
    (lambda b: b.pop("properties"), "properties"),
]


@pytest.mark.parametrize(("mutate", "field"), EXPORT_BAD_FIELDS, ids=[f for _, f in EXPORT_BAD_FIELDS])
def test_export_pipeline_bad_field_is_400_naming_it(app_env: str, uname: str, mutate: Any, field: str) -> None:
    body = acr_body("exportPipeline.json")
    mutate(body)
    message = assert_error(put_export(uname, body), 400, f"{field}:")
    assert message.startswith(f"{field}:")
    assert_error(call("export_pipeline_get", "GET", f"exportPipelines/{uname}", params={"name": uname}), 404)


IMPORT_BAD_FIELDS = [
    (lambda b: b["properties"]["source"].__setitem__("uri", "not-a-url"), "properties.source.uri"),
    (lambda b: b["properties"].__setitem__("trigger", {"sourceTrigger": {"status": "Maybe"}}),
     "properties.trigger.sourceTrigger.status"),
    (lambda b: b["properties"].__setitem__("options", ["OverwriteBlobs"]), "properties.options[0]"),
    (lambda b: b["properties"].__setitem__("target", {"repositoryPrefix": "Bad Prefix"}),
     "properties.target.repositoryPrefix"),
    (lambda b: b["properties"].__setitem__("target", {"remap": ["nonsense"]}), "properties.target.remap[0]"),
]


@pytest.mark.parametrize(("mutate", "field"), IMPORT_BAD_FIELDS, ids=[f for _, f in IMPORT_BAD_FIELDS])
def test_import_pipeline_bad_field_is_400_naming_it(app_env: str, uname: str, mutate: Any, field: str) -> None:
    body = acr_body("importPipeline.json")
    mutate(body)
    assert_error(put_import(uname, body), 400, f"{field}:")


@pytest.mark.parametrize("name", ["abc", "x" * 51, "has_underscore", "spaces here"])
def test_bad_pipeline_name_is_400_naming_name(app_env: str, name: str) -> None:
    assert_error(put_export(name), 400, "name:", repr(name))


def test_not_json_is_400(app_env: str, uname: str) -> None:
    resp = call("export_pipeline_put", "PUT", f"exportPipelines/{uname}", raw=b"{not json", params={"name": uname})
    assert_error(resp, 400, "body:")


def test_default_registry_missing_names_the_field(app_env: str, uname: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_REGISTRY")
    assert_error(put_export(uname), 400, "properties.source.registryUri:", "FERRY_REGISTRY")


def test_pipeline_credentials_go_to_a_claim_not_the_table(app_env: str, uname: str) -> None:
    body = acr_body("exportPipeline.json")
    body["properties"]["source"] = {"registryUri": "src.example.com",
                                    "credentials": {"username": "puller", "password": "PIPELINEPASSWORD"}}
    resp = put_export(uname, body)
    assert resp.status_code == 201
    assert b"PIPELINEPASSWORD" not in resp.get_body()
    ref = js(resp)["properties"]["source"]["credentialsRef"]
    assert claim_store(Settings.from_env()).get_json(ref) == {"username": "puller", "password": "PIPELINEPASSWORD",
                                                              "registry": "src.example.com"}
    entity = TableServiceClient.from_connection_string(app_env).get_table_client(
        "FerryExportPipelines").get_entity("ferry", uname.lower())
    assert "PIPELINEPASSWORD" not in json.dumps(dict(entity))
    # GET then PUT as is (what a client round trip does) keeps the reference.
    again = put_export(uname, js(call("export_pipeline_get", "GET", f"exportPipelines/{uname}",
                                      params={"name": uname})))
    assert again.status_code == 200 and js(again)["properties"]["source"]["credentialsRef"] == ref
    forged = copy.deepcopy(body)
    forged["properties"]["source"] = {"credentialsRef": "credentials/exportPipelines/someoneelse"}
    assert_error(put_export(uname, forged), 400, "properties.source.credentialsRef:")


# --------------------------------------------------------------------------- runs


def test_export_run_starts_pipeline_run_with_the_input_contract(app_env: str, uname: str, client: Any,
                                                               runner: LocalOrchestrationRunner) -> None:
    assert put_export(uname).status_code == 201
    body = export_run_body(uname)
    resp = put_run(client, uname, body)
    assert resp.status_code == 202, resp.get_body()
    location = resp.headers["Location"]
    assert location == f"http://localhost:7071/api/pipelineRuns/{uname}"
    assert resp.headers["Azure-AsyncOperation"] == location
    assert FUNCTION_KEY not in json.dumps(dict(resp.headers)) and FUNCTION_KEY.encode() not in resp.get_body()
    view = js(resp)
    assert view["type"] == "Microsoft.ContainerRegistry/registries/pipelineRuns"
    assert view["properties"]["provisioningState"] == "Succeeded"
    assert view["properties"]["request"] == body["properties"]["request"]

    [instance] = runner.instances()
    assert instance.name == "pipeline_run"
    assert instance.instance_id.startswith(f"run-{uname}-")
    stored = js(call("export_pipeline_get", "GET", f"exportPipelines/{uname}", params={"name": uname}))
    # The orchestration gets the typed job, never the raw request or the pipeline body.
    assert set(instance.input) == {"runName", "kind", "job"}
    assert instance.input["runName"] == uname and instance.input["kind"] == "export"
    job = JobSpec.from_json(instance.input["job"])
    request, target = body["properties"]["request"], stored["properties"]["target"]
    assert job.select == (ExportRefs(tuple(request["artifacts"])),)
    assert isinstance(job.destination, ArchiveEndpoint)
    assert job.destination.url == f"{target['uri']}/{request['target']['name']}"
    assert job.destination.storage.mode == target["storageAccessMode"]
    assert runner.wait(instance.instance_id, 30).status == "Completed"
    entity = ResourceStore.from_connection_string(app_env).get("pipelineRuns", uname)
    assert entity.fields["instanceId"] == instance.instance_id
    assert entity.fields["kind"] == "export" and entity.fields["forceUpdateTag"] == "1"


def test_get_run_merges_orchestration_status(app_env: str, uname: str, client: Any,
                                             runner: LocalOrchestrationRunner) -> None:
    assert put_export(uname).status_code == 201
    HOLDS[uname] = threading.Event()
    assert put_run(client, uname, export_run_body(uname)).status_code == 202
    [instance] = runner.instances()
    for _ in range(200):
        running = js(get_run(client, uname))["properties"]["response"]
        if running.get("progress"):
            break
        asyncio.run(asyncio.sleep(0.02))
    assert running["status"] == "Running"
    assert running["progress"] == {"percentage": "40"}
    assert running["startTime"].endswith("Z") and "finishTime" not in running
    HOLDS[uname].set()
    runner.wait(instance.instance_id, 30)
    done = js(get_run(client, uname))["properties"]
    response = done["response"]
    artifacts = export_run_body(uname)["properties"]["request"]["artifacts"]
    assert response["status"] == "Succeeded"
    assert response["progress"] == {"percentage": "100"}
    assert response["importedArtifacts"] == artifacts
    assert response["catalogDigest"] == "sha256:" + "c" * 64
    assert response["pipelineRunErrorMessage"] is None
    assert [a["status"] for a in response["artifacts"]] == ["copied"] * len(artifacts)
    assert response["finishTime"] >= response["startTime"]
    assert response["target"] == {"type": "AzureStorageBlob",
                                  "uri": "https://sourcestorage.blob.core.windows.net/transfer/export-2024-01.tar",
                                  "keyVaultUri": "https://sourcevault.vault.azure.net/secrets/acrexportsas"}
    assert "pipeline" not in done  # the stored pipeline snapshot is not shown
    listed = js(call("pipeline_run_list", "GET", "pipelineRuns", client=client))["value"]
    assert any(r["name"] == uname and r["properties"]["response"]["status"] == "Succeeded" for r in listed)


def test_failed_run_reports_a_redacted_message(app_env: str, uname: str, client: Any,
                                               runner: LocalOrchestrationRunner, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    assert put_export(uname).status_code == 201
    assert put_run(client, uname, export_run_body(uname, artifacts=["fail/me"])).status_code == 202
    [instance] = runner.instances()
    runner.wait(instance.instance_id, 30)
    resp = get_run(client, uname)
    response = js(resp)["properties"]["response"]
    assert response["status"] == "Failed"
    assert "blob refused" in response["pipelineRunErrorMessage"]
    assert b"SECRETSIGNATURE" not in resp.get_body()
    assert "finishTime" in response


def test_idempotent_put_and_force_update_tag(app_env: str, uname: str, client: Any,
                                             runner: LocalOrchestrationRunner) -> None:
    assert put_export(uname).status_code == 201
    first = put_run(client, uname, export_run_body(uname, tag="a"))
    assert first.status_code == 202
    assert len(runner.instances()) == 1
    runner.wait(runner.instances()[0].instance_id, 30)

    same = put_run(client, uname, export_run_body(uname, tag="a"))
    assert same.status_code == 200, same.get_body()
    assert len(runner.instances()) == 1  # nothing new started
    assert js(same)["properties"]["response"]["status"] == "Succeeded"

    again = put_run(client, uname, export_run_body(uname, tag="b"))
    assert again.status_code == 202
    assert len(runner.instances()) == 2
    ids = {i.instance_id for i in runner.instances()}
    stored = ResourceStore.from_connection_string(app_env).get("pipelineRuns", uname)
    assert stored.fields["instanceId"] in ids and stored.fields["forceUpdateTag"] == "b"
    assert stored.fields["instanceId"] != runner.instances()[0].instance_id


def test_conflicting_put_while_running_is_409(app_env: str, uname: str, client: Any,
                                              runner: LocalOrchestrationRunner) -> None:
    assert put_export(uname).status_code == 201
    HOLDS[uname] = threading.Event()
    assert put_run(client, uname, export_run_body(uname, tag="a")).status_code == 202
    # The same request again while running is idempotent, a different one conflicts.
    assert put_run(client, uname, export_run_body(uname, tag="a")).status_code == 200
    assert_error(put_run(client, uname, export_run_body(uname, tag="b")), 409, f"pipelineRuns/{uname}",
                 "still running")
    assert len(runner.instances()) == 1
    HOLDS[uname].set()
    runner.wait(runner.instances()[0].instance_id, 30)
    assert put_run(client, uname, export_run_body(uname, tag="b")).status_code == 202


def test_import_run_by_bare_pipeline_name(app_env: str, uname: str, client: Any,
                                          runner: LocalOrchestrationRunner) -> None:
    assert put_import(uname).status_code == 201
    body = acr_body("pipelineRun-import.json", uname)
    body["properties"]["request"]["pipelineResourceId"] = uname
    resp = put_run(client, uname, body)
    assert resp.status_code == 202, resp.get_body()
    [instance] = runner.instances()
    assert instance.input["kind"] == "import"
    job = JobSpec.from_json(instance.input["job"])
    assert isinstance(job.source, ArchiveEndpoint) and job.source.url.endswith("/export-2024-01.tar")
    assert isinstance(job.select[0], ArchiveContents)
    runner.wait(instance.instance_id, 30)
    response = js(get_run(client, uname))["properties"]["response"]
    assert response["source"]["uri"] == "https://targetstorage.blob.core.windows.net/transfer/export-2024-01.tar"


def test_run_of_unknown_pipeline_is_404_naming_it(app_env: str, uname: str, client: Any) -> None:
    assert_error(put_run(client, uname, export_run_body("nosuchpipeline")), 404, "exportPipelines/nosuchpipeline")
    body = export_run_body(uname)
    body["properties"]["request"]["pipelineResourceId"] = "nosuchpipeline"
    assert_error(put_run(client, uname, body), 404, "exportPipelines/nosuchpipeline or importPipelines/nosuchpipeline")


def test_unknown_run_is_404_naming_it(app_env: str, client: Any) -> None:
    assert_error(get_run(client, "nosuchrun"), 404, "pipelineRuns/nosuchrun")


def test_bare_name_of_both_kinds_is_ambiguous(app_env: str, uname: str, client: Any) -> None:
    assert put_export(uname).status_code == 201
    assert put_import(uname).status_code == 201
    body = export_run_body(uname)
    body["properties"]["request"]["pipelineResourceId"] = uname
    assert_error(put_run(client, uname, body), 400, "properties.request.pipelineResourceId:", "both")


RUN_BAD_FIELDS = [
    (lambda r: r.__setitem__("artifacts", ["ok/repo:1", "Bad Repo"]), "properties.request.artifacts[1]"),
    (lambda r: r.__setitem__("artifacts", []), "properties.request.artifacts"),
    (lambda r: r.pop("target"), "properties.request.target.name"),
    (lambda r: r.__setitem__("target", {"type": "AzureStorageBlob", "name": "../escape.tar"}),
     "properties.request.target.name"),
    (lambda r: r.__setitem__("pipelineResourceId", "/subscriptions/x/other/thing"),
     "properties.request.pipelineResourceId"),
    (lambda r: r.pop("pipelineResourceId"), "properties.request.pipelineResourceId"),
    (lambda r: r.__setitem__("catalogDigest", "sha256:nothex"), "properties.request.catalogDigest"),
]


@pytest.mark.parametrize(("mutate", "field"), RUN_BAD_FIELDS, ids=[f for _, f in RUN_BAD_FIELDS])
def test_run_bad_field_is_400_naming_it(app_env: str, uname: str, client: Any, runner: LocalOrchestrationRunner,
                                        mutate: Any, field: str) -> None:
    assert put_export(uname).status_code == 201
    body = export_run_body(uname)
    mutate(body["properties"]["request"])
    assert_error(put_run(client, uname, body), 400, f"{field}:")
    assert runner.instances() == []


def test_import_run_needs_source_name(app_env: str, uname: str, client: Any) -> None:
    assert put_import(uname).status_code == 201
    body = acr_body("pipelineRun-import.json", uname)
    del body["properties"]["request"]["source"]
    assert_error(put_run(client, uname, body), 400, "properties.request.source.name:")


def test_bad_run_name_and_force_update_tag(app_env: str, uname: str, client: Any) -> None:
    assert put_export(uname).status_code == 201
    assert_error(put_run(client, "run", export_run_body(uname)), 400, "name:")
    body = export_run_body(uname)
    body["properties"]["forceUpdateTag"] = 7
    assert_error(put_run(client, uname, body), 400, "properties.forceUpdateTag:")


def test_delete_run(app_env: str, uname: str, client: Any, runner: LocalOrchestrationRunner) -> None:
    assert put_export(uname).status_code == 201
    assert put_run(client, uname, export_run_body(uname)).status_code == 202
    runner.wait(runner.instances()[0].instance_id, 30)
    params = {"name": uname}
    assert call("pipeline_run_delete", "DELETE", f"pipelineRuns/{uname}", client=client, params=params).status_code \
        == 200
    assert_error(get_run(client, uname), 404, uname)
    assert call("pipeline_run_delete", "DELETE", f"pipelineRuns/{uname}", client=client, params=params).status_code \
        == 204


# --------------------------------------------------------------------------- importImage


def test_import_image_keeps_credentials_out_of_input_and_logs(app_env: str, client: Any,
                                                              runner: LocalOrchestrationRunner, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"source": {"registryUri": "docker.io", "sourceImage": "library/hello-world:latest",
                       "credentials": {"username": "me", "password": "IMPORTPASSWORD"}},
            "targetTags": ["hello:v1", "mirror/hello"], "untaggedTargetRepositories": ["untagged/hello"],
            "mode": "Force"}
    resp = import_image(client, body)
    assert resp.status_code == 202, resp.get_body()
    [instance] = runner.instances()
    assert js(resp)["id"] == instance.instance_id  # the SDK's check-status payload
    assert instance.name == "image_import"
    job = JobSpec.from_json(instance.input["job"])
    assert isinstance(job.source, RegistryEndpoint)
    ref = job.source.credentials_ref
    assert ref and job.source == RegistryEndpoint("docker.io", ref)
    assert job.destination == RegistryEndpoint("registry.example.com")
    image = ("library/hello-world", "latest")
    assert job.select == (Artifacts((CopyRequest(*image, "hello", ("v1",)),
                                     CopyRequest(*image, "mirror/hello", ("latest",)),
                                     CopyRequest(*image, "untagged/hello", ()))),)
    assert job.options.overwrite_tags  # mode Force
    assert claim_store(Settings.from_env()).get_json(ref) == {"username": "me", "password": "IMPORTPASSWORD",
                                                              "registry": "docker.io"}
    assert "IMPORTPASSWORD" not in json.dumps(instance.input)
    assert b"IMPORTPASSWORD" not in resp.get_body()
    assert "IMPORTPASSWORD" not in caplog.text
    assert runner.wait(instance.instance_id, 30).status == "Completed"


def test_import_image_default_target_is_the_source_name(app_env: str, client: Any,
                                                        runner: LocalOrchestrationRunner) -> None:
    assert import_image(client, {"source": {"registryUri": "https://mcr.microsoft.com",
                                            "sourceImage": "dotnet/runtime:8.0"}}).status_code == 202
    digest = "sha256:" + "d" * 64
    assert import_image(client, {"source": {"registryUri": "mcr.microsoft.com",
                                            "sourceImage": f"dotnet/runtime@{digest}"}}).status_code == 202
    by_tag, by_digest = sorted(runner.instances(), key=lambda i: i.created_time)
    tag_job, digest_job = (JobSpec.from_json(i.input["job"]) for i in (by_tag, by_digest))
    assert tag_job.select == (Artifacts((CopyRequest("dotnet/runtime", "8.0", "dotnet/runtime", ("8.0",)),)),)
    assert tag_job.source == RegistryEndpoint("mcr.microsoft.com")
    assert digest_job.select == (Artifacts((CopyRequest("dotnet/runtime", digest, "dotnet/runtime", ()),)),)
    assert not tag_job.options.overwrite_tags  # mode NoForce


IMAGE_BAD_FIELDS = [
    ({"source": {"registryUri": "docker.io"}}, "source.sourceImage"),
    ({"source": {"sourceImage": "hello"}}, "source.registryUri"),
    ({"source": {"registryUri": "docker.io", "resourceId": "/subscriptions/x", "sourceImage": "a"}},
     "source.resourceId"),
    ({"source": {"registryUri": "docker.io", "sourceImage": "Not Valid"}}, "source.sourceImage"),
    ({"source": {"registryUri": "docker.io", "sourceImage": "a", "credentials": {"username": "u"}}},
     "source.credentials.password"),
    ({"source": {"registryUri": "docker.io", "sourceImage": "a"}, "mode": "Sometimes"}, "mode"),
    ({"source": {"registryUri": "docker.io", "sourceImage": "a"}, "targetTags": ["ok:1", "BAD TAG"]},
     "targetTags[1]"),
    ({"source": {"registryUri": "docker.io", "sourceImage": "a"}, "untaggedTargetRepositories": ["UPPER"]},
     "untaggedTargetRepositories[0]"),
    ({"source": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x",
                 "sourceImage": "a"}}, "source.resourceId"),
    ({}, "source"),
]


@pytest.mark.parametrize(("body", "field"), IMAGE_BAD_FIELDS, ids=[f for _, f in IMAGE_BAD_FIELDS])
def test_import_image_bad_field_is_400_naming_it(app_env: str, client: Any, runner: LocalOrchestrationRunner,
                                                 body: Any, field: str) -> None:
    assert_error(import_image(client, body), 400, f"{field}:")
    assert runner.instances() == []


def test_import_image_by_resource_id_resolves_the_login_server(app_env: str, client: Any, arm: ArmStandIn,
                                                               runner: LocalOrchestrationRunner) -> None:
    rid = arm.add_registry(SUB, "source-rg", "sourceregistry", "sourceregistry.azurecr.io")
    resp = import_image(client, {"source": {"resourceId": rid, "sourceImage": "samples/app:1"},
                                 "targetTags": ["app:1"]})
    assert resp.status_code == 202, resp.get_body()
    [instance] = runner.instances()
    assert JobSpec.from_json(instance.input["job"]).source == RegistryEndpoint("sourceregistry.azurecr.io")
    assert arm.tokens_seen and set(arm.tokens_seen) == {arm.token}
    assert arm.requests[-1].startswith(f"{rid}?api-version=20")


def test_import_image_unknown_resource_id_is_404_naming_it(app_env: str, client: Any, arm: ArmStandIn,
                                                           runner: LocalOrchestrationRunner) -> None:
    rid = f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/missingreg"
    assert_error(import_image(client, {"source": {"resourceId": rid, "sourceImage": "a:1"}}), 404,
                 "source.resourceId:", "missingreg")
    assert runner.instances() == []


# --------------------------------------------------------------------------- end to end


def test_export_run_through_the_real_orchestrations(app_env: str, uname: str, azurite, registry, content,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PUT pipeline, PUT run and GET run through the API with the app's own orchestrations and
    activities: the run exports from a real registry to an Azurite blob."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    import function_app
    from tests.harness import content as c

    container = f"api-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(app_env).create_container(container)
    monkeypatch.setenv("FERRY_STORAGE_CONNECTION_STRINGS", json.dumps([app_env]))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    seeded = c.push_samples(registry.url, content, prefix=f"api{uname}")
    artifacts = [f"{seeded['helm']}:v1", f"{seeded['multiarch']}:v1"]
    body = {"properties": {"source": {"registryUri": registry.host},
                           "target": {"type": "AzureStorageBlobContainer",
                                      "uri": f"{azurite.blob_endpoint('acct1')}/{container}",
                                      "storageAccessMode": "ConnectionString"}}}
    assert put_export(uname, body).status_code == 201
    with LocalOrchestrationRunner(function_app.app) as local:
        client = LocalDurableClient(local)
        run = {"properties": {"forceUpdateTag": "1", "request": {
            "pipelineResourceId": uname, "artifacts": artifacts,
            "target": {"type": "AzureStorageBlob", "name": "api.tar"}}}}
        assert put_run(client, uname, run).status_code == 202
        [instance] = [i for i in local.instances() if i.name == "pipeline_run"]
        assert local.wait(instance.instance_id, 120).status == "Completed"
        response = js(get_run(client, uname))["properties"]["response"]
    assert response["status"] == "Succeeded", response
    assert sorted(response["importedArtifacts"]) == sorted(artifacts)
    assert response["progress"] == {"percentage": "100"}
    blob = BlobServiceClient.from_connection_string(app_env).get_blob_client(container, "api.tar")
    assert blob.get_blob_properties().metadata["ferrycatalogdigest"] == response["catalogDigest"]
