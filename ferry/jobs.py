"""Copy jobs as JSON: what a Durable activity (or ``ferry run``) needs to rebuild a copy's transports.

A job spec is a small JSON document::

    {"source":      {"kind": "registry", "registry": "HOST", "credentials": CLAIM|null, "insecure": false}
                  | {"kind": "archive", "url": "BLOB URL or PATH", "storage": STORAGE},
     "destination": {"kind": "registry", "registry": "HOST", "credentials": CLAIM|null, "insecure": false}
                  | {"kind": "archive", "url": "...", "storage": STORAGE, "overwrite": false},
     "requests":    [{"source_repository", "source_reference", "target_repository", "target_tags"}, ...]
                    (or, for an archive source, "import": {"prefix": "", "remap": [[FROM, TO]]}),
     "options":     {"overwrite_tags": false, "include_referrers": true, "continue_on_errors": false,
                     "parallelism": 8, "include_foreign_layers": false}}

``STORAGE`` follows ACR's ``storageAccessMode``: ``{"mode": "SasToken", "keyVaultUri": URI}``,
``{"mode": "ManagedIdentity"}``, or ``{"mode": "ConnectionString"}`` (connection strings from the
``FERRY_STORAGE_CONNECTION_STRINGS`` app setting, a JSON list, or ``AZURE_STORAGE_CONNECTION_STRING``).
Credentials are never inline: ``credentials`` names a claim (:mod:`ferry.claims`) holding
``{"username", "password"}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import ExitStack
from typing import Any

from ferry.archive.requests import export_requests, import_requests, verify_imported
from ferry.blobcache import BlobLocationCache
from ferry.copy import (
    BlobBatchResult,
    CopyOptions,
    CopyPlan,
    CopyRequest,
    finish_copy,
    plan_copy,
    transfer_blobs,
)
from ferry.errors import TransientError, UsageError
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from ferry.registry.dockerconfig import resolve_credentials
from ferry.transports.archive import (
    ArchiveDestination,
    ArchiveSource,
    delete_archive,
    is_blob_url,
    open_destination,
    open_source,
)
from ferry.transports.base import Destination, PlanAware, Source
from ferry.transports.registry import RegistryDestination, RegistrySource

CONNECTION_STRINGS_SETTING = "FERRY_STORAGE_CONNECTION_STRINGS"


def connection_strings() -> list[str]:
    """Connection strings from the app setting (a JSON list) and ``$AZURE_STORAGE_CONNECTION_STRING``."""
    found: list[str] = []
    raw = os.environ.get(CONNECTION_STRINGS_SETTING)
    if raw:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise UsageError(f"app setting {CONNECTION_STRINGS_SETTING} must be a JSON list of strings") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"app setting {CONNECTION_STRINGS_SETTING} must be a JSON list of strings")
        found += value
    single = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if single:
        found.append(single)
    return found


def storage_auth(url: str, storage: dict[str, Any] | None) -> Any:
    """The :mod:`ferry.storage` auth for ``url`` from a job's STORAGE block; None for a local path."""
    if not is_blob_url(url):
        return None
    from ferry.storage import BlobLocation, ManagedIdentityAuth, SasTokenAuth, auto_auth

    storage = storage or {}
    mode = storage.get("mode", "ConnectionString")
    if mode == "SasToken":
        if not storage.get("keyVaultUri"):
            raise UsageError("storage mode SasToken needs keyVaultUri (the Key Vault secret holding the SAS)")
        return SasTokenAuth(secret_uri=storage["keyVaultUri"])
    if mode == "ManagedIdentity":
        return ManagedIdentityAuth()
    if mode == "ConnectionString":
        return auto_auth(BlobLocation.parse(url), connection_strings())
    raise UsageError(f"storage mode {mode!r} is not SasToken, ManagedIdentity or ConnectionString")


def _registry_client(spec: dict[str, Any], stack: ExitStack, claims: Any, parallel: int) -> RegistryClient:
    credentials = Credentials.anonymous()
    if spec.get("credentials"):
        found = claims.get_json(spec["credentials"])
        credentials = Credentials.from_user_pass(found.get("username") or None, found.get("password"))
    else:
        credentials = resolve_credentials(spec["registry"], None)
    return stack.enter_context(RegistryClient(spec["registry"], credentials, insecure=bool(spec.get("insecure")),
                                              max_connections=max(8, parallel * 2)))


def options_of(job: dict[str, Any]) -> CopyOptions:
    raw = job.get("options") or {}
    return CopyOptions(
        overwrite_tags=bool(raw.get("overwrite_tags")),
        include_referrers=bool(raw.get("include_referrers", True)),
        parallelism=int(raw.get("parallelism", 8)),
        all_or_nothing=not raw.get("continue_on_errors"),
        include_foreign_layers=bool(raw.get("include_foreign_layers")),
    )


def open_job(job: dict[str, Any], stack: ExitStack, *, claims: Any = None,
             cache: BlobLocationCache | None = None) -> tuple[Source, Destination]:
    """Build the job's source and destination; both are closed when ``stack`` closes."""
    parallel = options_of(job).parallelism
    src_spec, dst_spec = job["source"], job["destination"]
    source: Source
    if src_spec["kind"] == "registry":
        source = RegistrySource(_registry_client(src_spec, stack, claims, parallel), cache)
    elif src_spec["kind"] == "archive":
        source = stack.enter_context(open_source(src_spec["url"],
                                                 storage_auth=storage_auth(src_spec["url"], src_spec.get("storage"))))
    else:
        raise UsageError(f"job source kind {src_spec['kind']!r} is not registry or archive")
    destination: Destination
    if dst_spec["kind"] == "registry":
        destination = RegistryDestination(_registry_client(dst_spec, stack, claims, parallel), cache)
    elif dst_spec["kind"] == "archive":
        destination = stack.enter_context(open_destination(
            dst_spec["url"], overwrite=bool(dst_spec.get("overwrite")), hold=True,
            storage_auth=storage_auth(dst_spec["url"], dst_spec.get("storage"))))
    else:
        raise UsageError(f"job destination kind {dst_spec['kind']!r} is not registry or archive")
    return source, destination


def requests_of(job: dict[str, Any], source: Source) -> list[CopyRequest]:
    """The job's copy requests: given explicitly, expanded from export REFs, or every artifact of an
    archive source."""
    if "export" in job:
        spec = job["export"]
        return export_requests(source, list(spec["refs"]), int(spec.get("max_artifacts", 10_000)))[1]
    if "requests" in job:
        return [CopyRequest(r["source_repository"], r["source_reference"], r["target_repository"],
                            tuple(r.get("target_tags") or ())) for r in job["requests"]]
    if isinstance(source, ArchiveSource):
        spec = job.get("import") or {}
        remaps = [(old, new) for old, new in spec.get("remap") or []]
        return import_requests(source, (spec.get("prefix") or "").strip("/"), remaps)
    raise UsageError("a job needs 'requests' unless its source is an archive")


def request_json(request: CopyRequest) -> dict[str, Any]:
    return {"source_repository": request.source_repository, "source_reference": request.source_reference,
            "target_repository": request.target_repository, "target_tags": list(request.target_tags)}


def archive_destination(destination: Destination) -> ArchiveDestination | None:
    return destination if isinstance(destination, ArchiveDestination) else None


# -- the phases of a job, as Durable activities run them ----------------------------------------
def plan_job(job: dict[str, Any], claims: Any, prefix: str) -> dict[str, Any]:
    """Walk the job, store its plan and blob batches as claims under ``prefix``; return a summary.

    Raises only for the job as a whole (bad spec, archive exists, registry unreachable); an
    artifact that cannot be planned is reported in ``failed``.
    """
    options = options_of(job)
    with ExitStack() as stack:
        source, destination = open_job(job, stack, claims=claims)
        plan = plan_copy(source, destination, requests_of(job, source), options)
    transient = [a.result for a in plan.artifacts if a.transient]
    if transient:  # let the activity's retry policy plan again once the registry is back
        raise TransientError(f"planning {transient[0].source}: {transient[0].error}")
    raw = job.get("batching") or {}
    batches = plan.batches(max_bytes=int(raw.get("max_bytes", 512 * 1024 * 1024)),
                           max_blobs=int(raw.get("max_blobs", 64)))
    claims.put_json(f"{prefix}/plan.json", plan.to_json())
    claims.put_json(f"{prefix}/batches.json", batches)
    return {"prefix": prefix, "batches": len(batches), "blobs": len(plan.placements), "bytes": plan.bytes_total,
            "artifacts": len(plan.artifacts),
            "failed": [dataclasses.asdict(a.result) for a in plan.artifacts if a.failed]}


def transfer_job_batch(job: dict[str, Any], claims: Any, prefix: str, index: int) -> dict[str, Any]:
    """Move batch ``index`` of the stored plan; raises TransientError if any blob failed transiently,
    so the caller's retry policy runs the batch again (what is done is skipped the second time)."""
    plan = CopyPlan.from_json(claims.get_json(f"{prefix}/plan.json"))
    batch = claims.get_json(f"{prefix}/batches.json")[index]
    options = options_of(job)
    with ExitStack() as stack:
        source, destination = open_job(job, stack, claims=claims)
        if isinstance(destination, PlanAware):
            destination.prepare(plan.write_plan())
        result = transfer_blobs(source, destination, plan, batch, options)
        archive = archive_destination(destination)
        if archive is not None:
            claims.put_json(f"{prefix}/part-{index}.json", archive.export_state())
    if result.transient:
        first = result.transient[0]
        raise TransientError(f"batch {index}: {len(result.transient)} blob(s) failed transiently, "
                             f"e.g. {first}: {result.errors[first]}")
    return result.to_json()


def finish_job(job: dict[str, Any], claims: Any, prefix: str, results: list[dict[str, Any]],
               batches: int) -> dict[str, Any]:
    """Write manifests and tags (or seal and publish the archive) from the batches' results."""
    plan = CopyPlan.from_json(claims.get_json(f"{prefix}/plan.json"))
    merged = BlobBatchResult()
    batch_list: list[list[str]] | None = None
    for result in results:
        if "failedBatch" in result:  # a batch that never completed: every blob in it failed
            batch_list = batch_list or claims.get_json(f"{prefix}/batches.json")
            message = str(result.get("message") or "the batch failed after its retries")
            merged.errors.update({digest: message for digest in batch_list[int(result["failedBatch"])]})
            continue
        merged.merge(BlobBatchResult.from_json(result))
    options = options_of(job)
    continue_on_errors = bool((job.get("options") or {}).get("continue_on_errors"))
    outcome: dict[str, Any] = {"published": None, "catalogDigest": None, "deletedSource": None}
    with ExitStack() as stack:
        source, destination = open_job(job, stack, claims=claims)
        archive = archive_destination(destination)
        if archive is not None:
            archive.prepare(plan.write_plan())
            for index in range(batches):
                archive.import_state(claims.get_json(f"{prefix}/part-{index}.json"))
        report = finish_copy(destination, plan, merged, options)
        if archive is not None and (report.ok or (continue_on_errors and any(a.ok for a in report.artifacts))):
            archive.publish()
            outcome["published"] = job["destination"]["url"]
            outcome["catalogDigest"] = archive.metadata.get("ferrycatalogdigest")
        if isinstance(source, ArchiveSource):
            outcome["catalogDigest"] = source.catalog_digest
            if job.get("delete_source_on_success") and report.ok and isinstance(destination, RegistryDestination):
                verify_imported(destination, source, requests_of(job, source))
                source.close()
                src = job["source"]
                delete_archive(src["url"], storage_auth(src["url"], src.get("storage")))
                outcome["deletedSource"] = src["url"]
    outcome["report"] = {**dataclasses.asdict(report), "ok": report.ok}
    return outcome
