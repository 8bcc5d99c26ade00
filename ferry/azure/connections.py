"""SDK clients for the app's own storage connections (task hub account, claims, import account),
from a :class:`~ferry.settings.StorageConnection`: a connection string, or service URIs reached
with a managed identity (``ManagedIdentityCredential`` with the user-assigned ``client_id`` when
one is named, else ``DefaultAzureCredential``), as identity-based Functions deployments configure.

May be imported by ``ferry/azure``, ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ferry.azure.budget import blob_options, core_options
from ferry.errors import UsageError
from ferry.settings import StorageConnection

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient


_T = TypeVar("_T")
_pool: dict[tuple[Callable[[StorageConnection], Any], StorageConnection], Any] = {}
_pool_lock = threading.Lock()


def pooled(connection: StorageConnection, build: Callable[[StorageConnection], _T]) -> _T:
    """The process's one ``build(connection)``: SDK clients are thread-safe and keep their
    connections, so each app storage connection gets one client per kind, not one per call."""
    with _pool_lock:
        key = (build, connection)
        if key not in _pool:
            _pool[key] = build(connection)
        return _pool[key]


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
