"""The Durable orchestrations, run by the local runner on the real replay engine, with the real
activities against Azurite (two accounts) and distribution registries."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

import function_app
from ferry.jobs.spec import Artifacts, JobOptions, JobSpec, RegistryEndpoint
from ferry.plan import CopyRequest
from runner import LocalOrchestrationRunner
from tests.harness import content as c
from tests.helpers import image_import_input, pipeline_run_input, skopeo_raw

KINDS = ["multiarch", "docker_list", "artifact", "helm"]


@pytest.fixture
def app_env(azurite, monkeypatch):
    """App settings as local.settings.json would give them: storage for claims, connection strings
    for the transfer accounts, and one container in each account."""
    container = f"xfer-{uuid.uuid4().hex[:10]}"
    for account in ("acct1", "acct2"):
        BlobServiceClient.from_connection_string(azurite.connection_string(account)).create_container(container)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")  # the test services; hostile hosts stay refused
    monkeypatch.setenv("FERRY_STORAGE_CONNECTION_STRINGS",
                       json.dumps([azurite.connection_string("acct1"), azurite.connection_string("acct2")]))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)

    class Env:
        name = container

        @staticmethod
        def container_url(account: str) -> str:
            return f"{azurite.blob_endpoint(account)}/{container}"

        @staticmethod
        def blob(account: str, blob: str):
            return BlobServiceClient.from_connection_string(azurite.connection_string(account)) \
                .get_blob_client(container, blob)

    return Env


@pytest.fixture
def runner():
    statuses: list[tuple[str, dict]] = []
    with LocalOrchestrationRunner(function_app.app, on_status=lambda i, s: statuses.append((i, s))) as local:
        local.statuses = statuses  # type: ignore[attr-defined]
        yield local


def export_pipeline(app_env, registry, options=()) -> dict:
    return {"name": "exportpipe", "properties": {
        "source": {"registryUri": registry.host},
        "target": {"type": "AzureStorageBlobContainer", "uri": app_env.container_url("acct1"),
                   "storageAccessMode": "ConnectionString"},
        "options": list(options)}}


def import_pipeline(app_env, registry, options=(), prefix="") -> dict:
    return {"name": "importpipe", "properties": {
        "source": {"type": "AzureStorageBlobContainer", "uri": app_env.container_url("acct2"),
                   "storageAccessMode": "ConnectionString"},
        "target": {"registryUri": registry.host, "repositoryPrefix": prefix},
        "trigger": {"sourceTrigger": {"status": "Enabled"}},
        "options": list(options)}}


@pytest.fixture(scope="module")
def seeded(registry, content):
    return c.push_samples(registry.url, content, prefix="orch")


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_export_copy_import_through_orchestrations(mode, runner, app_env, registry, registry_b, content, seeded):
    artifacts = [f"{seeded[k]}:v1" for k in KINDS]
    exported = runner.run("pipeline_run", pipeline_run_input("exp", "export", export_pipeline(app_env, registry),
                                             {"artifacts": artifacts, "target": {"name": "exp.tar"}}))
    assert exported.status == "Completed", exported.error
    assert exported.output["status"] == "Succeeded", exported.output
    assert sorted(exported.output["importedArtifacts"]) == sorted(artifacts)
    metadata = app_env.blob("acct1", "exp.tar").get_blob_properties().metadata
    assert metadata["ferrycatalogdigest"] == exported.output["catalogDigest"]
    # The run's own custom status (what GET pipelineRuns reads) moved through the copy up to 100.
    percentages = [s["percentage"] for i, s in runner.statuses
                   if i == exported.instance_id and isinstance(s, dict) and "percentage" in s]
    assert percentages[-1] == 100 and percentages == sorted(percentages)
    assert any(0 < p < 100 for p in percentages), percentages

    copied = runner.run("blob_copy", {"source": f"{app_env.container_url('acct1')}/exp.tar",
                                      "target": f"{app_env.container_url('acct2')}/exp.tar",
                                      "source_storage": {"mode": "ConnectionString"},
                                      "target_storage": {"mode": "ConnectionString"}, "mode": mode})
    assert copied.status == "Completed" and copied.output["mode"] == mode, copied.output
    assert app_env.blob("acct2", "exp.tar").get_blob_properties().metadata == metadata

    imported = runner.run("pipeline_run", pipeline_run_input(
        "imp", "import", import_pipeline(app_env, registry_b, prefix=mode), {"source": {"name": "exp.tar"}}))
    assert imported.status == "Completed", imported.error
    assert imported.output["status"] == "Succeeded", imported.output
    assert imported.output["catalogDigest"] == exported.output["catalogDigest"]
    for kind in KINDS:
        assert skopeo_raw(registry_b.host, f"{mode}/{seeded[kind]}", "v1") == content[kind].raw


def test_transfer_chains_three_sub_orchestrations(runner, app_env, registry, registry_b, content, seeded):
    export = pipeline_run_input("t-exp", "export", export_pipeline(app_env, registry),
                                {"artifacts": [f"{seeded['helm']}:v1"], "target": {"name": "t.tar"}})
    pipeline = import_pipeline(app_env, registry_b, options=["DeleteSourceBlobOnSuccess"], prefix="chain")
    imp = pipeline_run_input("t-imp", "import", pipeline, {"source": {"name": "t.tar"}})
    copy = {"source": f"{app_env.container_url('acct1')}/t.tar", "target": f"{app_env.container_url('acct2')}/t.tar",
            "source_storage": {"mode": "ConnectionString"}, "target_storage": {"mode": "ConnectionString"}}
    result = runner.run("transfer", {"export": export, "copy": copy, "import": imp})
    assert result.status == "Completed" and result.output["status"] == "Succeeded", result.output
    assert set(result.output["steps"]) == {"export", "copy", "import"}
    assert skopeo_raw(registry_b.host, f"chain/{seeded['helm']}", "v1") == content["helm"].raw
    assert not app_env.blob("acct2", "t.tar").exists()  # DeleteSourceBlobOnSuccess
    assert app_env.blob("acct1", "t.tar").exists()


def test_many_batches_split_into_sub_orchestrations(runner, app_env, registry, registry_b, monkeypatch):
    import orchestrations.copy_job as copy_job

    monkeypatch.setattr(copy_job, "INLINE_BATCHES", 2)
    layers = [c.random_layer(2_000, 7000 + i) for i in range(7)]
    image = c.oci_image(layers, seed=70)
    c.push(registry.url, "orch/many", image, tag="v1")
    job = JobSpec(RegistryEndpoint(registry.host), RegistryEndpoint(registry_b.host),
                  (Artifacts((CopyRequest("orch/many", "v1", "orch/many", ("v1",)),)),),
                  JobOptions(batch_max_blobs=1)).to_json()
    result = runner.run("copy_job", {"job": job, "prefix": f"t/{uuid.uuid4().hex}"})
    assert result.status == "Completed", result.error
    assert result.output["outcome"]["report"]["ok"]
    children = [i.name for i in runner.instances()]
    assert children.count("copy_batches") == 4  # 8 batches (7 layers + config), 2 per sub-orchestration
    assert skopeo_raw(registry_b.host, "orch/many", "v1") == image.raw


def test_image_import_with_force_and_untagged(runner, app_env, registry, registry_b, content, seeded, monkeypatch):
    monkeypatch.setenv("FERRY_REGISTRY", registry_b.host)
    params = {"source": {"registryUri": registry.host, "sourceImage": f"{seeded['docker']}:v1"},
              "targetTags": ["imported/docker:stable"], "untaggedTargetRepositories": ["imported/untagged"],
              "mode": "NoForce"}
    result = runner.run("image_import", image_import_input(params))
    assert result.output["status"] == "Succeeded", result.output
    assert skopeo_raw(registry_b.host, "imported/docker", "stable") == content["docker"].raw
    assert c.get_manifest(registry_b.url, "imported/untagged", content["docker"].digest)[1] == content["docker"].raw
    assert c.list_tags(registry_b.url, "imported/untagged") == []
    # The tag now exists: another image without Force fails naming it, with Force it is replaced.
    other = {**params, "source": {"registryUri": registry.host, "sourceImage": f"{seeded['helm']}:v1"},
             "untaggedTargetRepositories": []}
    refused = runner.run("image_import", image_import_input(other))
    assert refused.output["status"] == "Failed"
    assert "imported/docker:stable" in refused.output["pipelineRunErrorMessage"]
    forced = runner.run("image_import", image_import_input({**other, "mode": "Force"}))
    assert forced.output["status"] == "Succeeded", forced.output
    assert skopeo_raw(registry_b.host, "imported/docker", "stable") == content["helm"].raw


def test_permanent_failures_give_readable_messages_and_no_tags(runner, app_env, registry, registry_b, seeded):
    # An unknown tag: the export fails without ContinueOnErrors, naming the artifact; no archive.
    exported = runner.run("pipeline_run", pipeline_run_input(
        "bad", "export", export_pipeline(app_env, registry),
        {"artifacts": [f"{seeded['helm']}:v1", "orch/nope:v9"], "target": {"name": "bad.tar"}}))
    assert exported.output["status"] == "Failed"
    assert "orch/nope:v9" in exported.output["pipelineRunErrorMessage"]
    assert not app_env.blob("acct1", "bad.tar").exists()
    # With ContinueOnErrors the rest is exported and the failure still reported.
    partial = runner.run("pipeline_run", pipeline_run_input(
        "coe", "export", export_pipeline(app_env, registry, ["ContinueOnErrors"]),
        {"artifacts": [f"{seeded['helm']}:v1", "orch/nope:v9"], "target": {"name": "coe.tar"}}))
    assert partial.output["importedArtifacts"] == [f"{seeded['helm']}:v1"]
    assert "orch/nope:v9" in partial.output["pipelineRunErrorMessage"]
    assert app_env.blob("acct1", "coe.tar").exists()
    # A missing source blob on import: clear message, nothing tagged.
    missing = runner.run("pipeline_run", pipeline_run_input(
        "nosrc", "import", import_pipeline(app_env, registry_b, prefix="never"), {"source": {"name": "absent.tar"}}))
    assert missing.output["status"] == "Failed" and "absent.tar" in missing.output["pipelineRunErrorMessage"]


def test_registry_restart_mid_run_is_retried(runner, app_env, registry, registry_factory, content, seeded):
    target = registry_factory()
    big = c.oci_image([c.random_layer(3_000_000, 9100 + i) for i in range(4)], seed=91)
    c.push(registry.url, "orch/big", big, tag="v1")
    target.stop()
    restarter = threading.Timer(3.0, target.restart)
    restarter.start()
    started = time.monotonic()
    job = JobSpec(RegistryEndpoint(registry.host), RegistryEndpoint(target.host),
                  (Artifacts((CopyRequest("orch/big", "v1", "orch/big", ("v1",)),)),)).to_json()
    result = runner.run("copy_job", {"job": job, "prefix": f"t/{uuid.uuid4().hex}"})
    restarter.join()
    assert result.status == "Completed", result.error
    assert result.output.get("outcome", {}).get("report", {}).get("ok"), result.output
    assert time.monotonic() - started >= 3.0
    assert skopeo_raw(target.host, "orch/big", "v1") == big.raw


def test_expired_sas_from_key_vault_fails_the_run_clearly(runner, app_env, azurite, registry, registry_b, seeded,
                                                          keyvault, monkeypatch, capsys, caplog):
    import logging
    import secrets
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from ferry.azure.blob import clear_client_cache
    from tests.harness.identity import CONFLICTING_ENV_VARS
    from tests.helpers import run_ferry

    caplog.set_level(logging.DEBUG)
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in keyvault.identity.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FERRY_KEYVAULT_CA_BUNDLE", str(keyvault.ca_bundle))
    clear_client_cache()
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to",
                     f"{app_env.container_url('acct2')}/sas.tar", "--connection-string",
                     azurite.connection_string("acct2")).code == 0
    expired = generate_container_sas("acct2", app_env.name, account_key=azurite.accounts["acct2"],
                                     permission=ContainerSasPermissions(read=True),
                                     expiry=datetime.now(UTC) - timedelta(hours=1))
    secret_uri = keyvault.set_secret(f"exp{secrets.token_hex(4)}", expired)
    pipeline = import_pipeline(app_env, registry_b, prefix="expired")
    pipeline["properties"]["source"].update(storageAccessMode="SasToken", keyVaultUri=secret_uri)
    result = runner.run("pipeline_run", pipeline_run_input("expired", "import", pipeline,
                                                           {"source": {"name": "sas.tar"}}))
    output = result.output
    assert output["status"] == "Failed"
    message = output["pipelineRunErrorMessage"]
    assert "sas.tar" in message and ("expired" in message.lower() or "403" in message)
    signature = next(p.split("=", 1)[1] for p in expired.split("&") if p.startswith("sig="))
    assert signature not in json.dumps(output) + caplog.text
    assert c.list_tags(registry_b.url, f"expired/{seeded['helm']}") == []


def test_export_into_a_missing_container_fails_naming_it(runner, app_env, registry, seeded):
    """Each batch's failure is one BatchOutcome, so the run ends with the storage error (it used to
    die in finish_job with a TypeError from a fabricated batch result)."""
    pipeline = export_pipeline(app_env, registry)
    pipeline["properties"]["target"]["uri"] = app_env.container_url("acct1").rsplit("/", 1)[0] + "/nosuchcontainer"
    result = runner.run("pipeline_run", pipeline_run_input(
        "nocontainer", "export", pipeline, {"artifacts": [f"{seeded['helm']}:v1"], "target": {"name": "x.tar"}}))
    assert result.status == "Completed", result.error
    message = result.output["pipelineRunErrorMessage"]
    assert result.output["status"] == "Failed"
    assert "nosuchcontainer" in message and "not found" in message.lower(), message
    assert "TypeError" not in message and "Traceback" not in message
