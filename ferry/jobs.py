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

import json
import os
from contextlib import ExitStack
from typing import Any

from ferry.archive.requests import import_requests
from ferry.blobcache import BlobLocationCache
from ferry.copy import CopyOptions, CopyRequest
from ferry.errors import UsageError
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from ferry.registry.dockerconfig import resolve_credentials
from ferry.transports.archive import ArchiveDestination, ArchiveSource, is_blob_url, open_destination, open_source
from ferry.transports.base import Destination, Source
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
    """The job's copy requests: given explicitly, or every artifact of an archive source."""
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
