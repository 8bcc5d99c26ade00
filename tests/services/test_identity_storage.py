"""The app's own storage in the identity form identity-based deployments use (no keys):
``AzureWebJobsStorage__blobServiceUri``/``__tableServiceUri`` with ``__credential=managedidentity``
and ``__clientId``. Claims and the Table store reach HTTPS Azurite with OAuth, tokens from the
managed-identity stand-in, for the user-assigned identity named."""

from __future__ import annotations

import secrets

import pytest

from ferry.azure.claims import BlobClaimStore, claim_store
from ferry.settings import Settings
from ferry.transfer.store import Record, ResourceStore
from tests.harness.identity import CONFLICTING_ENV_VARS, ManagedIdentityStandIn
from tests.services.test_storage import azurite_oauth, storage_jwt  # noqa: F401  (the HTTPS Azurite fixture)

CLIENT_ID = "99999999-8888-7777-6666-555555555555"


@pytest.fixture
def identity(monkeypatch, azurite_oauth):  # noqa: F811
    server, ca_bundle = azurite_oauth
    stand_in = ManagedIdentityStandIn(tokens={"https://storage.azure.com": storage_jwt()})
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in stand_in.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)  # the stand-in Azurite's self-signed certificate
    yield server, stand_in
    stand_in.stop()


def identity_settings(server, **extra: str) -> Settings:
    return Settings({"AzureWebJobsStorage__blobServiceUri": f"https://127.0.0.1:{server.blob_port}/acct1",
                     "AzureWebJobsStorage__tableServiceUri": f"https://127.0.0.1:{server.table_port}/acct1",
                     "AzureWebJobsStorage__credential": "managedidentity",
                     "AzureWebJobsStorage__clientId": CLIENT_ID, **extra})


def test_claims_reach_storage_with_the_user_assigned_identity(identity):
    server, stand_in = identity
    settings = identity_settings(server)
    store = claim_store(settings)
    assert isinstance(store, BlobClaimStore)
    name = f"runs/id-{secrets.token_hex(4)}/plan.json"
    store.put_json(name, {"plan": [1, 2, 3]})
    assert store.get_json(name) == {"plan": [1, 2, 3]}
    assert "https://storage.azure.com" in stand_in.resources
    assert set(stand_in.client_ids) == {CLIENT_ID}  # the user-assigned identity, never the default one


def test_tables_reach_storage_with_the_identity(identity):
    server, stand_in = identity
    store = ResourceStore.from_settings(identity_settings(server))
    name = f"idp{secrets.token_hex(4)}"
    store.put("exportPipelines", Record(name, {"properties": {"x": 1}}))
    assert store.get("exportPipelines", name).body == {"properties": {"x": 1}}
    assert CLIENT_ID in stand_in.client_ids


def test_the_default_identity_when_no_client_id_is_named(identity):
    server, stand_in = identity
    settings = Settings({"AzureWebJobsStorage__blobServiceUri": f"https://127.0.0.1:{server.blob_port}/acct1",
                         "AzureWebJobsStorage__tableServiceUri": f"https://127.0.0.1:{server.table_port}/acct1"})
    store = claim_store(settings)
    store.put_json("default/x.json", {"ok": True})
    assert store.get_json("default/x.json") == {"ok": True}
    assert stand_in.client_ids and set(stand_in.client_ids) == {None}
