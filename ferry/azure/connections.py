"""SDK clients for the app's own storage connections (task hub account, claims, import account),
from a :class:`~ferry.settings.StorageConnection`: a connection string, or service URIs reached
with a managed identity (``ManagedIdentityCredential`` with the user-assigned ``client_id`` when
one is named, else ``DefaultAzureCredential``), as identity-based Functions deployments configure.

May be imported by ``ferry/azure``, ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferry.azure.budget import blob_options, core_options
from ferry.errors import UsageError
from ferry.settings import StorageConnection

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient


def credential_for(connection: StorageConnection) -> Any:
    """The Azure AD credential of an identity-based connection."""
    if connection.client_id:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=connection.client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service(connection: StorageConnection) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    if connection.connection_string is not None:
        return BlobServiceClient.from_connection_string(connection.connection_string, **blob_options())
    if not connection.blob_uri:
        raise UsageError(f"app setting {connection.setting}: no blob endpoint (set {connection.setting}__accountName "
                         f"or {connection.setting}__blobServiceUri)")
    return BlobServiceClient(connection.blob_uri, credential=credential_for(connection), **blob_options())


def table_service(connection: StorageConnection) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    if connection.connection_string is not None:
        return TableServiceClient.from_connection_string(connection.connection_string, **core_options())
    if not connection.table_uri:
        raise UsageError(f"app setting {connection.setting}: no table endpoint (set {connection.setting}__accountName "
                         f"or {connection.setting}__tableServiceUri)")
    return TableServiceClient(connection.table_uri, credential=credential_for(connection), **core_options())
