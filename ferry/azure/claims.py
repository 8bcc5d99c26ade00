"""Claim checks: large or secret orchestration data kept outside orchestration history, by name.

Durable orchestration inputs and outputs are persisted in the task hub's history, so they stay
small and never hold secrets: plans, blob batches, per-batch archive state and credentials go
into a :class:`ClaimStore` and only their names travel through orchestrations.

Three stores keep one contract (:class:`ClaimStore`): :class:`BlobClaimStore` (the
``ferry-claims`` container of the app's storage account), :class:`FileClaimStore` (a directory,
for ``ferry run`` without an account) and :class:`MemoryClaimStore` (the CLI's in-process jobs).
A missing claim is :class:`~ferry.errors.BlobNotFoundError` naming it, in every store.

May be imported by ``ferry/jobs``, ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ferry.azure.connections import blob_service, pooled
from ferry.azure.errors import translate_azure_errors
from ferry.errors import BlobNotFoundError, UsageError
from ferry.files import replace_file
from ferry.settings import Settings, StorageConnection

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

CONTAINER = "ferry-claims"


class ClaimStore(Protocol):
    """JSON documents by name. Names are relative paths (``runs/ID/plan.json``)."""

    def put_json(self, name: str, data: Any) -> str:
        """Store ``data`` under ``name`` (replacing it); returns ``name``."""
        ...

    def get_json(self, name: str) -> Any:
        """The document; BlobNotFoundError naming it if absent."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every claim whose name starts with ``prefix``; returns how many."""
        ...

    def delete(self, name: str) -> bool:
        """Delete the claim ``name``; False if there was none."""
        ...

    def older_than(self, cutoff: datetime) -> list[str]:
        """Names of the claims last written before ``cutoff`` (UTC)."""
        ...


def _check_name(name: str) -> str:
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise UsageError(f"claim name {name!r} is not a relative path")
    return name


def _missing(name: str) -> BlobNotFoundError:
    return BlobNotFoundError(f"claim {name} does not exist", status=404)


class MemoryClaimStore:
    """Claims in this process's memory: the CLI's credentials never touch a disk."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def put_json(self, name: str, data: Any) -> str:
        with self._lock:
            self._data[_check_name(name)] = json.dumps(data)
            self._written[name] = datetime.now(UTC)
        return name

    def get_json(self, name: str) -> Any:
        with self._lock:
            if name not in self._data:
                raise _missing(name)
            return json.loads(self._data[name])

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            names = [n for n in self._data if n.startswith(prefix)]
            for name in names:
                del self._data[name]
        return len(names)

    def delete(self, name: str) -> bool:
        with self._lock:
            self._written.pop(name, None)
            return self._data.pop(name, None) is not None

    def older_than(self, cutoff: datetime) -> list[str]:
        with self._lock:
            return sorted(n for n, when in self._written.items() if when < cutoff and n in self._data)


class FileClaimStore:
    """Claims as files under a directory: for ``ferry run`` where there is no app storage account."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put_json(self, name: str, data: Any) -> str:
        replace_file(self.root / _check_name(name), json.dumps(data, separators=(",", ":")).encode())
        return name

    def get_json(self, name: str) -> Any:
        path = self.root / _check_name(name)
        if not path.is_file():
            raise _missing(name)
        return json.loads(path.read_text())

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path.relative_to(self.root).as_posix().startswith(prefix):
                path.unlink()
                count += 1
        return count

    def delete(self, name: str) -> bool:
        path = self.root / _check_name(name)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def older_than(self, cutoff: datetime) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                      if p.is_file() and not p.name.endswith(".partial")
                      and datetime.fromtimestamp(p.stat().st_mtime, UTC) < cutoff)


class BlobClaimStore:
    """Claims as blobs in one container, created on first use."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._ready = False

    @classmethod
    def from_connection(cls, connection: StorageConnection) -> BlobClaimStore:
        return cls(blob_service(connection).get_container_client(CONTAINER))

    def put_json(self, name: str, data: Any) -> str:
        self._ensure()
        with translate_azure_errors(f"claim {_check_name(name)}"):
            self.container.upload_blob(name, json.dumps(data, separators=(",", ":")).encode(), overwrite=True)
        return name

    def get_json(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        with translate_azure_errors(f"claim {_check_name(name)}"):
            try:
                return json.loads(self.container.download_blob(name).readall())
            except ResourceNotFoundError:
                raise _missing(name) from None

    def delete_prefix(self, prefix: str) -> int:
        with translate_azure_errors(f"claims {prefix}*"):
            names = [b.name for b in self.container.list_blobs(name_starts_with=prefix)]
            for name in names:
                self.container.delete_blob(name)
        return len(names)

    def delete(self, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        with translate_azure_errors(f"claim {_check_name(name)}"):
            try:
                self.container.delete_blob(name)
            except ResourceNotFoundError:
                return False
        return True

    def older_than(self, cutoff: datetime) -> list[str]:
        with translate_azure_errors(f"claims container {CONTAINER}"):
            return sorted(b.name for b in self.container.list_blobs() if b.last_modified < cutoff)

    def _ensure(self) -> None:
        if self._ready:
            return
        from azure.core.exceptions import ResourceExistsError

        with translate_azure_errors(f"claims container {CONTAINER}"), contextlib.suppress(ResourceExistsError):
            self.container.create_container()
        self._ready = True


def claim_store(settings: Settings) -> ClaimStore:
    """``FERRY_CLAIMS_DIR`` (local files) if set, else the claims container of ``FERRY_CLAIMS_CONNECTION``
    (default: the app's storage account); one pooled client per connection string."""
    if settings.claims_dir:
        return FileClaimStore(settings.claims_dir)
    return pooled(settings.claims_connection, BlobClaimStore.from_connection)


def sweep(store: ClaimStore, cutoff: datetime, is_active: Callable[[str], bool]) -> list[str]:
    """Delete claims written before ``cutoff`` unless they belong to a run still going: a run's
    claims are ``runs/<instance id>/...`` and are kept while ``is_active(instance id)``. Returns the
    names deleted. Credentials of a pipeline (``credentials/<collection>/<name>``) live as long as
    their pipeline and are never swept."""
    deleted = []
    for name in store.older_than(cutoff):
        parts = name.split("/")
        if parts[0] == "credentials" and parts[1:2] != ["importImage"]:
            continue
        if parts[0] == "runs" and len(parts) > 2 and is_active(parts[1]):
            continue
        if store.delete(name):
            deleted.append(name)
    return deleted


class ClaimUploadSessions:
    """Chunked uploads in progress kept as claims under ``prefix`` (a job's), so that an activity
    retried on another worker resumes where the registry stands (``ferry.registry.upload``)."""

    def __init__(self, claims: ClaimStore, prefix: str) -> None:
        self.claims = claims
        self.prefix = prefix.rstrip("/")

    def _name(self, key: str) -> str:
        import hashlib

        return f"{self.prefix}/{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get(self, key: str) -> str | None:
        try:
            found = self.claims.get_json(self._name(key))
        except BlobNotFoundError:
            return None
        return str(found["location"]) if isinstance(found, dict) and found.get("key") == key else None

    def put(self, key: str, location: str) -> None:
        self.claims.put_json(self._name(key), {"key": key, "location": location})

    def drop(self, key: str) -> None:
        self.claims.delete(self._name(key))
