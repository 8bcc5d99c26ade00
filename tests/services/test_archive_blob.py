"""The transfer path through Azure Blob Storage on real Azurite (two accounts) and real registries:
export → copy-blob (server-side and relay) → import, with resume, metadata checks and options."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw

KINDS = ["multiarch", "docker", "docker_list", "artifact", "helm"]


@pytest.fixture
def storage(azurite, monkeypatch):
    """A fresh container in both accounts; both connection strings in the environment, as a user sets one."""
    name = f"ferry-{uuid.uuid4().hex[:10]}"
    clients = {}
    for account in ("acct1", "acct2"):
        clients[account] = BlobServiceClient.from_connection_string(azurite.connection_string(account))
        clients[account].create_container(name)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)

    class Storage:
        container = name
        connection_args = ["--connection-string", azurite.connection_string("acct1"),
                           "--connection-string", azurite.connection_string("acct2")]

        @staticmethod
        def url(account: str, blob: str) -> str:
            return f"{azurite.blob_endpoint(account)}/{name}/{blob}"

        @staticmethod
        def blob(account: str, blob: str):
            return clients[account].get_blob_client(name, blob)

    return Storage


@pytest.fixture(scope="module")
def seeded(registry, content):
    return c.push_samples(registry.url, content, prefix="blobsrc")


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_export_copy_import_through_two_accounts(mode, registry, registry_b, content, seeded, storage, capsys):
    refs = [f"{registry.host}/{seeded[kind]}:v1" for kind in KINDS]
    exported = run_ferry(capsys, "export", *refs, "--to", storage.url("acct1", "run/export.tar"),
                         *storage.connection_args, "--json")
    assert exported.code == 0, exported.err + exported.out
    metadata = storage.blob("acct1", "run/export.tar").get_blob_properties().metadata
    assert metadata["ferryartifacts"] == str(len(KINDS))
    assert metadata["ferrycatalogdigest"] == exported.json()["catalog_digest"]

    copy_args = ["copy-blob", storage.url("acct1", "run/export.tar"), storage.url("acct2", "in/export.tar"),
                 *storage.connection_args, "--json"]
    if mode == "relay":
        copy_args.append("--relay")
    copied = run_ferry(capsys, *copy_args)
    assert copied.code == 0, copied.err + copied.out
    assert storage.blob("acct2", "in/export.tar").get_blob_properties().metadata == metadata

    imported = run_ferry(capsys, "import", storage.url("acct2", "in/export.tar"), "--to", f"{registry_b.host}/{mode}",
                         *storage.connection_args, "--json")
    assert imported.code == 0, imported.err + imported.out
    for kind in KINDS:
        assert skopeo_raw(registry_b.host, f"{mode}/{seeded[kind]}", "v1") == content[kind].raw
    # The signature and SBOM travelled with the multi-arch index.
    fallback = c.referrers_tag(content["multiarch"].digest)
    _, raw = c.get_manifest(registry_b.url, f"{mode}/{seeded['multiarch']}", fallback)
    assert {d["digest"] for d in json.loads(raw)["manifests"]} == {content["signature"].digest, content["sbom"].digest}


def test_interrupted_export_restages_only_missing_blocks(registry, fake_registry, content, storage, capsys):
    good = c.oci_image([c.random_layer(300_000, 4242), c.random_layer(200_000, 4243)], seed=42)
    bad_layer = c.random_layer(100_000, 4244)
    bad = c.oci_image([bad_layer], seed=43)
    fake_registry.add_content("resume/good", good, tags=["v1"])
    fake_registry.add_content("resume/bad", bad, tags=["v1"])
    fake_registry.add_blob(b"corrupted bytes" * 100, digest=bad_layer.digest)  # now served wrong
    target = storage.url("acct1", "resume.tar")
    first = run_ferry(capsys, "export", f"{fake_registry.host}/resume/good:v1", f"{fake_registry.host}/resume/bad:v1",
                      "--to", target, *storage.connection_args, "--json")
    assert first.code == 1
    errors = {a["source"]: a["error"] for a in first.json()["artifacts"]}
    assert bad_layer.digest in errors["resume/bad:v1"]
    assert "ContinueOnErrors" in errors["resume/good:v1"]  # held back: nothing is published
    assert not storage.blob("acct1", "resume.tar").exists()  # nothing visible after a failure
    staged_first = first.json()["blocks_staged"]
    assert staged_first > 0
    # The re-run (the broken artifact dropped) finds the good artifact's blocks staged already.
    second = run_ferry(capsys, "export", f"{fake_registry.host}/resume/good:v1", "--to", target,
                       *storage.connection_args, "--json")
    assert second.code == 0, second.err + second.out
    report = second.json()
    assert report["blocks_skipped"] >= len(good.all_blobs())
    assert report["blocks_staged"] < staged_first + report["blocks_skipped"]
    assert storage.blob("acct1", "resume.tar").exists()


def test_corrupt_layer_is_refused_and_its_blocks_never_reach_a_later_archive(registry_b, fake_registry, storage,
                                                                            capsys):
    """Export verifies each byte once (the source's stream): a layer of the right size but other bytes
    fails, nothing is published; the re-run, served the right bytes, stages that entry anew (the
    failed run's blocks carry a nonce no marker names) and the imported layer is the right one."""
    layer = c.random_layer(300_000, 4250)
    image = c.oci_image([layer], seed=4251)
    fake_registry.add_content("corrupt/img", image, tags=["v1"])
    fake_registry.add_blob(bytes([layer.data[0] ^ 0xFF]) + layer.data[1:], digest=layer.digest)
    target = storage.url("acct1", "corrupt.tar")
    export = ["export", f"{fake_registry.host}/corrupt/img:v1", "--to", target, *storage.connection_args, "--json"]
    first = run_ferry(capsys, *export)
    assert first.code != 0, first.out + first.err
    assert "digest mismatch" in first.json()["artifacts"][0]["error"] and layer.digest in first.out
    assert not storage.blob("acct1", "corrupt.tar").exists()
    fake_registry.add_blob(layer.data)
    second = run_ferry(capsys, *export)
    assert second.code == 0, second.err + second.out
    imported = run_ferry(capsys, "import", target, "--to", f"{registry_b.host}/fixed", *storage.connection_args)
    assert imported.code == 0, imported.err + imported.out
    assert c.get_blob(registry_b.url, "fixed/corrupt/img", layer.digest) == layer.data


def test_tampered_metadata_is_reported_not_imported(registry, registry_b, seeded, storage, capsys):
    target = storage.url("acct1", "meta.tar")
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to", target,
                     *storage.connection_args).code == 0
    blob = storage.blob("acct1", "meta.tar")
    metadata = blob.get_blob_properties().metadata
    blob.set_blob_metadata({**metadata, "ferrycatalogdigest": "sha256:" + "0" * 64})
    result = run_ferry(capsys, "import", target, "--to", f"{registry_b.host}/tampered", *storage.connection_args)
    assert result.code == 6 and "catalog digest" in result.err
    assert c.list_tags(registry_b.url, f"tampered/{seeded['helm']}") == []


def test_existing_blob_needs_overwrite(registry, seeded, storage, capsys):
    target = storage.url("acct1", "exists.tar")
    storage.blob("acct1", "exists.tar").upload_blob(b"someone else's data")
    result = run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to", target,
                       *storage.connection_args)
    assert result.code == 2 and "exists.tar" in result.err and "--overwrite" in result.err
    assert storage.blob("acct1", "exists.tar").download_blob().readall() == b"someone else's data"
    result = run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to", target, "--overwrite",
                       *storage.connection_args)
    assert result.code == 0, result.err
    assert storage.blob("acct1", "exists.tar").download_blob().readall()[:512].startswith(b"oci-layout")


def test_delete_source_blob_on_success(registry, registry_b, seeded, content, storage, capsys):
    target = storage.url("acct2", "delete-me.tar")
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded['artifact']}:v1", "--to", target,
                     *storage.connection_args).code == 0
    kept = run_ferry(capsys, "import", target, "--to", f"{registry_b.host}/kept", *storage.connection_args)
    assert kept.code == 0 and storage.blob("acct2", "delete-me.tar").exists()
    deleted = run_ferry(capsys, "import", target, "--to", f"{registry_b.host}/deleted", "--delete-source-on-success",
                        *storage.connection_args, "--json")
    assert deleted.code == 0, deleted.err
    assert deleted.json()["deleted_source"] == target
    assert not storage.blob("acct2", "delete-me.tar").exists()
    assert skopeo_raw(registry_b.host, f"deleted/{seeded['artifact']}", "v1") == content["artifact"].raw


def test_inspect_reads_a_blob(registry, seeded, storage, capsys):
    target = storage.url("acct1", "inspect.tar")
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded['multiarch']}:v1", "--to", target,
                     *storage.connection_args).code == 0
    result = run_ferry(capsys, "inspect", target, *storage.connection_args, "--json")
    assert result.code == 0, result.err
    data = result.json()
    [artifact] = data["artifacts"]
    assert artifact["name"] == f"{seeded['multiarch']}:v1"
    assert sorted(artifact["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    assert data["shared_bytes"] == 0 and data["blobs"] > 0


def _container_sas(azurite, container: str, expiry, **permissions) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas("acct1", container, account_key=azurite.accounts["acct1"],
                                  permission=ContainerSasPermissions(**permissions), expiry=expiry)


def test_sas_from_key_vault_for_export_and_import(registry, registry_b, seeded, content, storage, azurite,
                                                  keyvault, monkeypatch, capsys, caplog):
    import logging
    import secrets
    from datetime import UTC, datetime, timedelta

    from tests.harness.identity import CONFLICTING_ENV_VARS

    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in keyvault.identity.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FERRY_KEYVAULT_CA_BUNDLE", str(keyvault.ca_bundle))
    from ferry.azure.blob import clear_client_cache

    clear_client_cache()
    expiry = datetime.now(UTC) + timedelta(hours=1)
    write_sas = _container_sas(azurite, storage.container, expiry, read=True, write=True, create=True)
    read_sas = _container_sas(azurite, storage.container, expiry, read=True)
    write_uri = keyvault.set_secret(f"w{secrets.token_hex(4)}", write_sas)
    read_uri = keyvault.set_secret(f"r{secrets.token_hex(4)}", read_sas)
    target = storage.url("acct1", "kv.tar")  # no SAS in the URL, no connection string: Key Vault only
    caplog.set_level(logging.DEBUG)
    exported = run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to", target,
                         "--sas-secret", write_uri)
    assert exported.code == 0, exported.err + exported.out
    imported = run_ferry(capsys, "import", target, "--to", f"{registry_b.host}/kv", "--sas-secret", read_uri)
    assert imported.code == 0, imported.err + imported.out
    assert skopeo_raw(registry_b.host, f"kv/{seeded['helm']}", "v1") == content["helm"].raw
    signatures = [part.split("=", 1)[1] for sas in (write_sas, read_sas) for part in sas.split("&")
                  if part.startswith("sig=")]
    output = exported.out + exported.err + imported.out + imported.err + caplog.text
    assert signatures and not any(sig in output for sig in signatures)


def test_expired_sas_fails_clearly_without_leaking_it(registry, registry_b, seeded, storage, azurite, capsys):
    from datetime import UTC, datetime, timedelta

    from ferry.azure.blob import clear_client_cache

    target = storage.url("acct1", "expired.tar")
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded['helm']}:v1", "--to", target,
                     *storage.connection_args).code == 0
    clear_client_cache()
    expired = _container_sas(azurite, storage.container, datetime.now(UTC) - timedelta(hours=1), read=True)
    result = run_ferry(capsys, "import", f"{target}?{expired}", "--to", f"{registry_b.host}/expired")
    assert result.code != 0
    assert "expired" in result.err.lower() or "sas" in result.err.lower()
    signature = next(p.split("=", 1)[1] for p in expired.split("&") if p.startswith("sig="))
    assert signature not in result.err + result.out
    assert c.list_tags(registry_b.url, f"expired/{seeded['helm']}") == []
