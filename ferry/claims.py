"""Claim checks: large or secret orchestration data kept in blobs, referred to by name.

Durable orchestration inputs and outputs are persisted in the task hub's history, so they stay
small and never hold secrets: plans, blob batches, per-batch archive state and credentials go
into the ``ferry-claims`` container of the app's own storage account, and only their names
travel through orchestrations.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from ferry.errors import UsageError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

CONTAINER = "ferry-claims"
#: Development storage, as the Functions host understands ``UseDevelopmentStorage=true``.
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


def app_storage_connection_string() -> str:
    """``$FERRY_CLAIMS_CONNECTION``, else the app's ``$AzureWebJobsStorage``."""
    value = os.environ.get("FERRY_CLAIMS_CONNECTION") or os.environ.get("AzureWebJobsStorage")  # noqa: SIM112
    if not value:
        raise UsageError("app setting AzureWebJobsStorage (or FERRY_CLAIMS_CONNECTION) is not set")
    return DEVELOPMENT_STORAGE if value.strip() == "UseDevelopmentStorage=true" else value


class ClaimStore:
    """JSON documents by name in one container; created on first use."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._ready = False

    @classmethod
    def from_settings(cls) -> ClaimStore:
        from azure.storage.blob import ContainerClient

        return cls(ContainerClient.from_connection_string(app_storage_connection_string(), CONTAINER))

    def put_json(self, name: str, data: Any) -> str:
        from ferry.storage import translate_errors

        self._ensure()
        with translate_errors(f"claim {name}"):
            self.container.upload_blob(name, json.dumps(data, separators=(",", ":")).encode(), overwrite=True)
        return name

    def get_json(self, name: str) -> Any:
        """The document; BlobNotFoundError (a NotFound-like StorageError) naming it if absent."""
        from ferry.storage import translate_errors

        with translate_errors(f"claim {name}"):
            return json.loads(self.container.download_blob(name).readall())

    def delete_prefix(self, prefix: str) -> int:
        """Delete every claim whose name starts with ``prefix``; returns how many."""
        from ferry.storage import translate_errors

        with translate_errors(f"claims {prefix}*"):
            names = [b.name for b in self.container.list_blobs(name_starts_with=prefix)]
            for name in names:
                self.container.delete_blob(name)
        return len(names)

    def _ensure(self) -> None:
        if self._ready:
            return
        from azure.core.exceptions import ResourceExistsError

        from ferry.storage import translate_errors

        with translate_errors(f"claims container {CONTAINER}"), contextlib.suppress(ResourceExistsError):
            self.container.create_container()
        self._ready = True
