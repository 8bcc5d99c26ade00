"""Storage settings in both forms: a connection string, or the identity form of identity-based
Functions deployments (X__accountName, X__blobServiceUri, X__credential, X__clientId)."""

from __future__ import annotations

import pytest

from ferry.errors import UsageError
from ferry.settings import DEVELOPMENT_STORAGE, Settings, StorageConnection


def test_a_connection_string_wins_and_development_storage_expands():
    settings = Settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                         "AzureWebJobsStorage__accountName": "ignored"})
    assert settings.app_storage == StorageConnection("AzureWebJobsStorage", connection_string=DEVELOPMENT_STORAGE)
    assert not settings.app_storage.uses_identity


def test_account_name_gives_every_service_and_the_default_identity():
    connection = Settings({"AzureWebJobsStorage__accountName": "ferryapp"}).app_storage
    assert connection.uses_identity and connection.client_id is None
    assert connection.blob_uri == "https://ferryapp.blob.core.windows.net"
    assert connection.table_uri == "https://ferryapp.table.core.windows.net"
    assert connection.queue_uri == "https://ferryapp.queue.core.windows.net"


def test_service_uris_and_a_user_assigned_identity():
    connection = Settings({"FERRY_IMPORT_STORAGE__blobServiceUri": "https://land.blob.core.windows.net/",
                           "FERRY_IMPORT_STORAGE__credential": "managedidentity",
                           "FERRY_IMPORT_STORAGE__clientId": "abc"}).import_storage
    assert (connection.setting, connection.blob_uri, connection.table_uri, connection.client_id) == \
        ("FERRY_IMPORT_STORAGE", "https://land.blob.core.windows.net", None, "abc")


def test_a_client_id_without_managedidentity_credential_is_not_used():
    connection = Settings({"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__clientId": "x"}).app_storage
    assert connection.client_id is None


def test_claims_and_import_storage_fall_back_to_the_app_storage_in_either_form():
    settings = Settings({"AzureWebJobsStorage__accountName": "ferryapp"})
    assert settings.claims_connection.setting == "AzureWebJobsStorage"
    assert settings.import_storage.blob_uri == "https://ferryapp.blob.core.windows.net"


def test_nothing_set_names_both_forms():
    with pytest.raises(UsageError, match=r"FERRY_CLAIMS_CONNECTION.*AzureWebJobsStorage.*__accountName"):
        _ = Settings({}).claims_connection


def test_the_connection_string_never_shows_in_repr():
    connection = Settings({"AzureWebJobsStorage": "AccountName=a;AccountKey=SECRETKEY"}).app_storage
    assert "SECRETKEY" not in repr(connection)


def test_one_pooled_client_per_connection_and_kind() -> None:
    from ferry.azure.connections import pooled

    built: list[tuple[str, str]] = []

    def tables(connection: StorageConnection) -> object:
        built.append(("tables", connection.setting))
        return object()

    def blobs(connection: StorageConnection) -> object:
        built.append(("blobs", connection.setting))
        return object()

    first = StorageConnection("PoolTestA", connection_string="UseDevelopmentStorage=true")
    second = StorageConnection("PoolTestB", connection_string="UseDevelopmentStorage=true")
    assert pooled(first, tables) is pooled(first, tables)
    assert pooled(first, tables) is not pooled(second, tables)
    assert pooled(first, tables) is not pooled(first, blobs)
    assert built == [("tables", "PoolTestA"), ("tables", "PoolTestB"), ("blobs", "PoolTestA")]
