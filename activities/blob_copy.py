"""Activities of a blob copy between storage accounts: start a server-side copy, poll it, or relay."""

from __future__ import annotations

import dataclasses
from typing import Any

import azure.durable_functions as df

from activities.results import job_environment, permanent_failures_as_results
from ferry.azure import blobcopy
from ferry.azure.blob import BlobLocation
from ferry.jobs.endpoints import storage_auth
from ferry.jobs.spec import StorageAccess

bp = df.Blueprint()


def _access(raw: dict[str, Any] | None) -> StorageAccess:
    """ACR's ``{"mode": storageAccessMode, "keyVaultUri"}``; app-setting connection strings by default."""
    raw = raw or {}
    return StorageAccess(raw.get("mode", "ConnectionString"), raw.get("keyVaultUri"))


def _locations(payload: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    env = job_environment()
    src = BlobLocation.parse(payload["source"])
    dst = BlobLocation.parse(payload["target"])
    return (src, dst, storage_auth(payload["source"], _access(payload.get("source_storage")), env),
            storage_auth(payload["target"], _access(payload.get("target_storage")), env))


@bp.activity_trigger(input_name="payload")
def start_blob_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"source", "target", "source_storage", "target_storage", "overwrite"}`` → ``{"copyId"}``."""
    def start() -> dict[str, Any]:
        src, dst, src_auth, dst_auth = _locations(payload)
        copy_id = blobcopy.start_server_copy(src, dst, src_auth=src_auth, dst_auth=dst_auth,
                                            overwrite=bool(payload.get("overwrite")))
        return {"copyId": copy_id}

    return permanent_failures_as_results(start, "start_blob_copy")


@bp.activity_trigger(input_name="payload")
def blob_copy_status(payload: dict[str, Any]) -> dict[str, Any]:
    """Same input → ``{"status": pending|success|failed|aborted, "done", "total"}``."""
    def status() -> dict[str, Any]:
        src, dst, src_auth, dst_auth = _locations(payload)
        state, done, total = blobcopy.server_copy_status(dst, dst_auth)
        if state == "success":  # size and metadata must match before anyone trusts the copy
            blobcopy.verify_copy(src, dst, src_auth=src_auth, dst_auth=dst_auth)
        return {"status": state, "done": done, "total": total}

    return permanent_failures_as_results(status, "blob_copy_status")


@bp.activity_trigger(input_name="payload")
def relay_blob_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """Same input → the relay copy's result (ranges read, blocks staged, committed with metadata)."""
    def relay() -> dict[str, Any]:
        src, dst, src_auth, dst_auth = _locations(payload)
        result = blobcopy.copy_blob(src, dst, src_auth=src_auth, dst_auth=dst_auth, mode="relay",
                                   overwrite=bool(payload.get("overwrite")))
        return dataclasses.asdict(result)

    return permanent_failures_as_results(relay, "relay_blob_copy")
