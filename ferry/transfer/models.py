"""ExportPipeline, ImportPipeline and PipelineRun in ACR's JSON shapes, parsed once into typed models.

Bodies are accepted as ACR's REST API and ARM templates write them: ``{"properties": {...}}``,
with ``location``, ``identity``, ``type``, ``id``, ``name`` and ``systemData`` ignored. Every
``parse_*`` function returns a model whose ``properties()`` is the normalized JSON Ferry stores
(defaults filled in, never a password), and raises :class:`~ferry.errors.UsageError` whose message
starts with the JSON path of the bad field: ``properties.target.uri: must be ...``.

Ferry extensions beside ACR's fields:

* ExportPipeline ``properties.source {registryUri, credentials?}``: the registry to export from
  (default: the ``FERRY_REGISTRY`` app setting).
* ImportPipeline ``properties.target {registryUri, repositoryPrefix?, remap?, credentials?}``:
  the registry to import into (default ``FERRY_REGISTRY``); ``remap`` is ``{"FROM": "TO"}``,
  ``["FROM=TO"]`` or ``[["FROM", "TO"]]`` and is stored as ``{"FROM": "TO"}``.
* ``storageAccessMode`` also takes ``ConnectionString`` (connection strings from app settings,
  see :mod:`ferry.settings`), for Azurite and accounts without Key Vault.
* PipelineRun artifacts may be tag globs, ``repo:*`` or ``repo:v1.*``.

``credentials {username, password}`` never reach the stored JSON: the caller keeps them in a claim
(:mod:`ferry.azure.claims`) and sets ``credentials_ref``, which is stored as ``credentialsRef``.
ImportImageParameters are in :mod:`ferry.transfer.import_image`.

May be imported by ``ferry/transfer``, ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ferry.egress import EgressPolicy
from ferry.errors import InvalidReferenceError
from ferry.reference import ArtifactSpec, is_valid_digest, is_valid_repository
from ferry.transfer.fields import (
    Credentials,
    bad,
    choice,
    container_url,
    credentials_claim,
    credentials_ref,
    json_object,
    key_vault_uri,
    option_list,
    parse_credentials,
    properties_of,
    registry_host,
    string,
    string_list,
    validate_name,
)

PROVIDER = "Microsoft.ContainerRegistry/registries"
#: The ARM-like parent of every resource id Ferry answers with.
REGISTRY_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ferry"
               "/providers/Microsoft.ContainerRegistry/registries/ferry")

EXPORT_OPTIONS = ("OverwriteBlobs", "ContinueOnErrors")
IMPORT_OPTIONS = ("OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors")
ACCESS_MODES = ("SasToken", "ManagedIdentity", "ConnectionString")
CONTAINER_TYPE = "AzureStorageBlobContainer"
BLOB_TYPE = "AzureStorageBlob"

Kind = Literal["export", "import"]
COLLECTIONS: dict[Kind, str] = {"export": "exportPipelines", "import": "importPipelines"}

_ARM_PIPELINE_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+"
    r"/(?P<collection>exportPipelines|importPipelines)/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- pipelines


@dataclass
class StorageLocation:
    """ACR's ExportPipelineTargetProperties / ImportPipelineSourceProperties."""

    uri: str
    key_vault_uri: str | None
    storage_access_mode: str
    type: str = CONTAINER_TYPE

    @classmethod
    def parse(cls, value: Any, path: str) -> StorageLocation:
        raw = json_object(value, path)
        type_ = choice(raw.get("type"), f"{path}.type", (CONTAINER_TYPE,), CONTAINER_TYPE)
        uri = container_url(raw.get("uri"), f"{path}.uri")
        mode = choice(raw.get("storageAccessMode"), f"{path}.storageAccessMode", ACCESS_MODES, "SasToken")
        kv = key_vault_uri(raw.get("keyVaultUri"), f"{path}.keyVaultUri", required=mode == "SasToken")
        return cls(uri=uri, key_vault_uri=kv, storage_access_mode=mode, type=type_)

    def check_egress(self, policy: EgressPolicy, path: str) -> None:
        """Refuse the container or Key Vault host off ``policy`` (a managed-identity token needs https),
        naming ``path``'s field."""
        policy.check_url(self.uri, f"{path}.uri", https=self.storage_access_mode == "ManagedIdentity")
        if self.key_vault_uri:
            policy.check_url(self.key_vault_uri, f"{path}.keyVaultUri", https=True)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "uri": self.uri, "storageAccessMode": self.storage_access_mode}
        if self.key_vault_uri:
            data["keyVaultUri"] = self.key_vault_uri
        return data


@dataclass
class PipelineRegistry:
    """Ferry's registry side of a pipeline: ``registryUri`` plus optional credentials."""

    registry_uri: str
    credentials: Credentials | None = None
    credentials_ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"registryUri": self.registry_uri}
        if self.credentials_ref:
            data["credentialsRef"] = self.credentials_ref
        return data


def _registry_endpoint(value: Any, path: str, claim: str,
                       default: str | None) -> tuple[PipelineRegistry, dict[str, Any]]:
    raw = json_object(value, path, required=False)
    uri = raw.get("registryUri")
    if uri is None and not default:
        raise bad(f"{path}.registryUri", "required (the app setting FERRY_REGISTRY that would default it is not set)")
    registry = registry_host(uri if uri is not None else default, f"{path}.registryUri")
    credentials = parse_credentials(raw.get("credentials"), f"{path}.credentials")
    ref = None if credentials else credentials_ref(raw, path, claim)
    return PipelineRegistry(registry, credentials, ref), raw


@dataclass
class ExportPipeline:
    name: str
    target: StorageLocation
    source: PipelineRegistry
    options: list[str]

    collection = "exportPipelines"
    kind: Kind = "export"

    @property
    def credentials_claim(self) -> str:
        return credentials_claim(self.collection, self.name)

    def properties(self) -> dict[str, Any]:
        return {"target": self.target.to_json(), "options": list(self.options), "source": self.source.to_json()}


@dataclass
class ImportPipeline:
    name: str
    source: StorageLocation
    target: PipelineRegistry
    options: list[str]
    trigger_enabled: bool = True
    repository_prefix: str = ""
    remap: dict[str, str] = field(default_factory=dict)

    collection = "importPipelines"
    kind: Kind = "import"

    @property
    def credentials_claim(self) -> str:
        return credentials_claim(self.collection, self.name)

    def properties(self) -> dict[str, Any]:
        target = self.target.to_json()
        target["repositoryPrefix"] = self.repository_prefix
        target["remap"] = dict(self.remap)
        return {
            "source": self.source.to_json(),
            "trigger": {"sourceTrigger": {"status": "Enabled" if self.trigger_enabled else "Disabled"}},
            "options": list(self.options),
            "target": target,
        }


def parse_export_pipeline(name: str, body: Any, *, default_registry: str | None = None) -> ExportPipeline:
    """An ExportPipeline from an ACR body; ``name`` comes from the route, ``default_registry`` from
    ``FERRY_REGISTRY`` (used when ``properties.source.registryUri`` is absent)."""
    validate_name(name)
    props = properties_of(body)
    target = StorageLocation.parse(props.get("target"), "properties.target")
    options = option_list(props.get("options"), "properties.options", EXPORT_OPTIONS)
    source, _ = _registry_endpoint(props.get("source"), "properties.source",
                                   credentials_claim(ExportPipeline.collection, name), default_registry)
    return ExportPipeline(name=name, target=target, source=source, options=options)


def _remap(value: Any, path: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    if value is None:
        return pairs
    if isinstance(value, dict):
        items: list[Any] = [[k, v] for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    else:
        raise bad(path, 'must be {"FROM": "TO"}, ["FROM=TO"] or [["FROM", "TO"]]')
    for i, item in enumerate(items):
        if isinstance(item, str):
            old, sep, new = item.partition("=")
            item = [old, new] if sep else None
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, str) and is_valid_repository(x) for x in item)):
            raise bad(f"{path}[{i}]", "must map one repository path to another (FROM=TO)")
        pairs[item[0]] = item[1]
    return pairs


def parse_import_pipeline(name: str, body: Any, *, default_registry: str | None = None) -> ImportPipeline:
    """An ImportPipeline from an ACR body; ``name`` comes from the route, ``default_registry`` as
    for :func:`parse_export_pipeline`."""
    validate_name(name)
    props = properties_of(body)
    source = StorageLocation.parse(props.get("source"), "properties.source")
    trigger = json_object(props.get("trigger"), "properties.trigger", required=False)
    source_trigger = json_object(trigger.get("sourceTrigger"), "properties.trigger.sourceTrigger", required=False)
    status = choice(source_trigger.get("status"), "properties.trigger.sourceTrigger.status",
                     ("Enabled", "Disabled"), "Enabled")
    options = option_list(props.get("options"), "properties.options", IMPORT_OPTIONS)
    target, raw_target = _registry_endpoint(props.get("target"), "properties.target",
                                            credentials_claim(ImportPipeline.collection, name), default_registry)
    prefix = (string(raw_target.get("repositoryPrefix"), "properties.target.repositoryPrefix", required=False)
              or "").strip("/")
    if prefix and not is_valid_repository(prefix):
        raise bad("properties.target.repositoryPrefix", f"{prefix!r} is not a repository path")
    remap = _remap(raw_target.get("remap"), "properties.target.remap")
    return ImportPipeline(name=name, source=source, target=target, options=options,
                          trigger_enabled=status == "Enabled", repository_prefix=prefix, remap=remap)


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class PipelineRef:
    """What ``pipelineResourceId`` names: a kind when the id says it, and a name."""

    kind: Kind | None
    name: str


def parse_pipeline_resource_id(value: Any, path: str = "properties.request.pipelineResourceId") -> PipelineRef:
    """A full ARM id ``/subscriptions/.../registries/R/exportPipelines/NAME`` or a bare pipeline name."""
    text = string(value, path)
    assert text is not None
    match = _ARM_PIPELINE_RE.fullmatch(text)
    if match:
        kind: Kind = "export" if match["collection"].lower() == "exportpipelines" else "import"
        return PipelineRef(kind, validate_name(match["name"], path))
    if "/" in text:
        raise bad(path, "must be .../registries/REGISTRY/exportPipelines/NAME (or importPipelines), or a bare name")
    return PipelineRef(None, validate_name(text, path))


@dataclass
class PipelineRun:
    name: str
    pipeline: PipelineRef
    request: dict[str, Any]
    force_update_tag: str | None
    artifacts: list[str]
    target_name: str | None
    source_name: str | None
    catalog_digest: str | None

    collection = "pipelineRuns"

    @property
    def request_hash(self) -> str:
        """sha256 of the request's canonical JSON: equal bodies, equal hashes."""
        canonical = json.dumps(self.request, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def check_kind(self, kind: Kind) -> None:
        """Export runs need ``target.name`` and artifacts; import runs need ``source.name``."""
        if kind == "export":
            if not self.target_name:
                raise bad("properties.request.target.name", "required for a run of an export pipeline (the blob name)")
            if not self.artifacts:
                raise bad("properties.request.artifacts", "required for a run of an export pipeline")
        elif not self.source_name:
            raise bad("properties.request.source.name", "required for a run of an import pipeline (the blob name)")

    @classmethod
    def for_blob(cls, name: str, pipeline: ImportPipeline, blob: str, *, force_update_tag: str | None) -> PipelineRun:
        """The import run the blob trigger starts for ``blob`` landing in ``pipeline``'s container."""
        request = {"pipelineResourceId": resource_id(pipeline.collection, pipeline.name),
                   "source": {"type": BLOB_TYPE, "name": blob}}
        return cls(name=validate_name(name), pipeline=PipelineRef("import", pipeline.name), request=request,
                   force_update_tag=force_update_tag, artifacts=[], target_name=None,
                   source_name=blob_name(blob, "properties.request.source.name"), catalog_digest=None)

    def properties(self) -> dict[str, Any]:
        data: dict[str, Any] = {"request": self.request}
        if self.force_update_tag is not None:
            data["forceUpdateTag"] = self.force_update_tag
        return data


def _blob_ref(value: Any, path: str) -> str | None:
    if value is None:
        return None
    raw = json_object(value, path)
    choice(raw.get("type"), f"{path}.type", (BLOB_TYPE,), BLOB_TYPE)
    return blob_name(raw.get("name"), f"{path}.name")


def blob_name(value: Any, path: str) -> str:
    """A blob name: 1-1024 characters, no empty, ``.`` or ``..`` segment, no backslash."""
    name = string(value, path, max_length=1024)
    assert name is not None
    if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        raise bad(path, f"{name!r} is not a blob name")
    return name


def parse_pipeline_run(name: str, body: Any) -> PipelineRun:
    """A PipelineRun from an ACR body. Which of target/source is needed is checked by :meth:`check_kind`."""
    validate_name(name)
    props = properties_of(body)
    request = json_object(props.get("request"), "properties.request")
    pipeline = parse_pipeline_resource_id(request.get("pipelineResourceId"))
    artifacts = string_list(request.get("artifacts"), "properties.request.artifacts")
    for i, artifact in enumerate(artifacts):
        try:
            ArtifactSpec.parse(artifact, allow_glob=True)
        except InvalidReferenceError as exc:
            raise bad(f"properties.request.artifacts[{i}]", str(exc)) from exc
    target_name = _blob_ref(request.get("target"), "properties.request.target")
    source_name = _blob_ref(request.get("source"), "properties.request.source")
    digest = string(request.get("catalogDigest"), "properties.request.catalogDigest", required=False)
    if digest is not None and not is_valid_digest(digest):
        raise bad("properties.request.catalogDigest", "must be sha256:<64 hex>")
    tag = props.get("forceUpdateTag")
    if tag is not None and not isinstance(tag, str):
        raise bad("properties.forceUpdateTag", "must be a string")
    return PipelineRun(name=name, pipeline=pipeline, request=request, force_update_tag=tag, artifacts=artifacts,
                       target_name=target_name, source_name=source_name, catalog_digest=digest)


# --------------------------------------------------------------------------- ARM shapes


def resource_id(collection: str, name: str) -> str:
    return f"{REGISTRY_ID}/{collection}/{name}"


def arm_resource(collection: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "name", "type", "properties"}`` as ARM answers for a registry child resource."""
    return {"id": resource_id(collection, name), "name": name, "type": f"{PROVIDER}/{collection}",
            "properties": properties}

