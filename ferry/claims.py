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

from ferry.appsettings import APP_STORAGE_SETTING, setting_connection_string
from ferry.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

CONTAINER = "ferry-claims"
def claims_connection_string() -> str:
    """``$FERRY_CLAIMS_CONNECTION``, else the app's ``$AzureWebJobsStorage``."""
    return setting_connection_string("FERRY_CLAIMS_CONNECTION", fallback=APP_STORAGE_SETTING)


class FileClaimStore:
    """Claims as files under a directory: for ``ferry run`` where there is no app storage account."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from pathlib import Path

        self.root = Path(root)

    def put_json(self, name: str, data: Any) -> str:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        temporary.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(temporary, path)
        return name

    def get_json(self, name: str) -> Any:
        path = self._path(name)
        if not path.is_file():
            raise NotFoundError(f"claim {name} does not exist under {self.root}")
        return json.loads(path.read_text())

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root).as_posix()
            if path.is_file() and relative.startswith(prefix):
                path.unlink()
                count += 1
        return count

    def _path(self, name: str) -> Any:
        if name.startswith("/") or ".." in name.split("/"):
            raise UsageError(f"claim name {name!r} is not a relative path")
        return self.root / name


_stores: dict[str, ClaimStore] = {}


def claim_store() -> ClaimStore | FileClaimStore:
    """``$FERRY_CLAIMS_DIR`` (local files) if set, else the app storage account's container (one
    pooled client per connection string, so activities do not build a client per call)."""
    directory = os.environ.get("FERRY_CLAIMS_DIR")
    if directory:
        return FileClaimStore(directory)
    connection = claims_connection_string()
    if connection not in _stores:
        _stores[connection] = ClaimStore.from_connection_string(connection)
    return _stores[connection]


class ClaimStore:
    """JSON documents by name in one container; created on first use."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._ready = False

    @classmethod
    def from_connection_string(cls, connection: str) -> ClaimStore:
        from azure.storage.blob import ContainerClient

        return cls(ContainerClient.from_connection_string(connection, CONTAINER))

    @classmethod
    def from_settings(cls) -> ClaimStore:
        return cls.from_connection_string(claims_connection_string())

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
