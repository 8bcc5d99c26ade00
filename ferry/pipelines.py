"""ExportPipeline, ImportPipeline, PipelineRun and ImportImageParameters in ACR's JSON shapes.

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
  see :mod:`ferry.jobs`), for Azurite and accounts without Key Vault.
* PipelineRun artifacts may be tag globs, ``repo:*`` or ``repo:v1.*``.

``credentials {username, password}`` never reach the stored JSON: the caller keeps them in a claim
(:mod:`ferry.claims`) and sets ``credentials_ref``, which is stored as ``credentialsRef``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ferry.errors import InvalidReferenceError, UsageError
from ferry.reference import ArtifactSpec, is_valid_digest, is_valid_repository

REGISTRY_SETTING = "FERRY_REGISTRY"
PROVIDER = "Microsoft.ContainerRegistry/registries"
#: The ARM-like parent of every resource id Ferry answers with.
REGISTRY_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ferry"
               "/providers/Microsoft.ContainerRegistry/registries/ferry")

EXPORT_OPTIONS = ("OverwriteBlobs", "ContinueOnErrors")
IMPORT_OPTIONS = ("OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors")
ACCESS_MODES = ("SasToken", "ManagedIdentity", "ConnectionString")
CONTAINER_TYPE = "AzureStorageBlobContainer"
BLOB_TYPE = "AzureStorageBlob"
IMPORT_MODES = ("NoForce", "Force")

Kind = Literal["export", "import"]
COLLECTIONS: dict[Kind, str] = {"export": "exportPipelines", "import": "importPipelines"}

# ACR's rule for pipeline and pipeline run names: 5 to 50 letters, digits and dashes.
_NAME_RE = re.compile(r"^[A-Za-z0-9-]{5,50}$")
_ARM_PIPELINE_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+"
    r"/(?P<collection>exportPipelines|importPipelines)/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
_REGISTRY_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:.]+\])"
                               r"(?::[0-9]{1,5})?$")


# --------------------------------------------------------------------------- small checkers


def _bad(path: str, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}")


def _object(value: Any, path: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, "required object" if value is None else "must be a JSON object")
    return value


def _string(value: Any, path: str, *, required: bool = True, max_length: int = 2048) -> str | None:
    if value is None or value == "":
        if required:
            raise _bad(path, "required")
        return None
    if not isinstance(value, str):
        raise _bad(path, "must be a string")
    if len(value) > max_length or value != value.strip():
        raise _bad(path, f"must be at most {max_length} characters without surrounding spaces")
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(path, f"must be one of {', '.join(choices)}")
    for choice in choices:  # ARM enums are case-insensitive on input
        if value.lower() == choice.lower():
            return choice
    raise _bad(path, f"{value!r} is not one of {', '.join(choices)}")


def _string_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, "must be a list of strings")
    return list(value)


def _options(value: Any, path: str, allowed: tuple[str, ...]) -> list[str]:
    result: list[str] = []
    for i, item in enumerate(_string_list(value, path)):
        option = _choice(item, f"{path}[{i}]", allowed, "")
        if option not in result:
            result.append(option)
    return result


def _properties(body: Any) -> dict[str, Any]:
    body = _object(body, "body")
    return _object(body.get("properties"), "properties")


def validate_name(name: Any, path: str = "name") -> str:
    """ACR's rule for pipeline and run names: 5 to 50 letters, digits and dashes."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _bad(path, f"{name!r} must be 5 to 50 characters of letters, digits and dashes")
    return name


def _secret_free_url(value: str, path: str) -> None:
    query = urlsplit(value).query.lower()
    if "sig=" in query or "signature=" in query:
        raise _bad(path, "must not carry a SAS token; put the SAS in a Key Vault secret named by keyVaultUri")


def _container_url(value: Any, path: str) -> str:
    url = _string(value, path)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or not parts.path.strip("/"):
        raise _bad(path, "must be an https (or http) container URL such as https://ACCOUNT.blob.core.windows.net/CONTAINER")
    _secret_free_url(url, path)
    return url.rstrip("/")


def _key_vault_uri(value: Any, path: str, *, required: bool) -> str | None:
    uri = _string(value, path, required=required)
    if uri is None:
        return None
    parts = urlsplit(uri)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not parts.hostname or len(segments) not in (2, 3) or segments[0] != "secrets":
        raise _bad(path, "must be a Key Vault secret URI https://VAULT.vault.azure.net/secrets/NAME[/VERSION]")
    _secret_free_url(uri, path)
    return uri


def registry_host(value: Any, path: str) -> str:
    """``host[:port]`` from ``myregistry.azurecr.io``, ``https://myregistry.azurecr.io/`` and the like."""
    text = _string(value, path)
    assert text is not None
    host = text
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or parts.path.strip("/") or parts.query:
            raise _bad(path, "must be a registry host[:port], optionally with https://")
        host = parts.netloc
    host = host.rstrip("/")
    if not _REGISTRY_HOST_RE.match(host) or "@" in host:
        raise _bad(path, f"{text!r} is not a registry host[:port]")
    return host


def default_registry(path: str) -> str:
    """The ``FERRY_REGISTRY`` app setting, or an error naming ``path`` that must then be given."""
    value = os.environ.get(REGISTRY_SETTING, "").strip()
    if not value:
        raise _bad(path, f"required (the app setting {REGISTRY_SETTING} that would default it is not set)")
    return registry_host(value, f"app setting {REGISTRY_SETTING}")


@dataclass(frozen=True)
class Credentials:
    """A username and password for a registry. ``repr`` hides the password."""

    username: str
    password: str = field(repr=False)

    def to_claim(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def _credentials(value: Any, path: str) -> Credentials | None:
    if value is None:
        return None
    raw = _object(value, path)
    username = _string(raw.get("username"), f"{path}.username", required=False) or ""
    password = raw.get("password")
    if not isinstance(password, str) or not password:
        raise _bad(f"{path}.password", "required when credentials are given")
    return Credentials(username, password)


def _credentials_ref(raw: dict[str, Any], path: str, expected: str) -> str | None:
    """A stored ``credentialsRef`` echoed back by a GET-then-PUT round trip; only our own is accepted."""
    ref = raw.get("credentialsRef")
    if ref is None:
        return None
    if ref != expected:
        raise _bad(f"{path}.credentialsRef", "is set by Ferry; give credentials {username, password} instead")
    return expected


def credentials_claim(collection: str, name: str) -> str:
    """The claim name under which a pipeline's registry credentials are kept."""
    return f"credentials/{collection}/{name.lower()}"


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
        raw = _object(value, path)
        type_ = _choice(raw.get("type"), f"{path}.type", (CONTAINER_TYPE,), CONTAINER_TYPE)
        uri = _container_url(raw.get("uri"), f"{path}.uri")
        mode = _choice(raw.get("storageAccessMode"), f"{path}.storageAccessMode", ACCESS_MODES, "SasToken")
        kv = _key_vault_uri(raw.get("keyVaultUri"), f"{path}.keyVaultUri", required=mode == "SasToken")
        return cls(uri=uri, key_vault_uri=kv, storage_access_mode=mode, type=type_)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "uri": self.uri, "storageAccessMode": self.storage_access_mode}
        if self.key_vault_uri:
            data["keyVaultUri"] = self.key_vault_uri
        return data


@dataclass
class RegistryEndpoint:
    """Ferry's registry side of a pipeline: ``registryUri`` plus optional credentials."""

    registry_uri: str
    credentials: Credentials | None = None
    credentials_ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"registryUri": self.registry_uri}
        if self.credentials_ref:
            data["credentialsRef"] = self.credentials_ref
        return data


def _registry_endpoint(value: Any, path: str, claim: str) -> tuple[RegistryEndpoint, dict[str, Any]]:
    raw = _object(value, path, required=False)
    uri = raw.get("registryUri")
    registry = registry_host(uri, f"{path}.registryUri") if uri is not None else default_registry(f"{path}.registryUri")
    credentials = _credentials(raw.get("credentials"), f"{path}.credentials")
    ref = None if credentials else _credentials_ref(raw, path, claim)
    return RegistryEndpoint(registry, credentials, ref), raw


@dataclass
class ExportPipeline:
    name: str
    target: StorageLocation
    source: RegistryEndpoint
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
    target: RegistryEndpoint
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


def parse_export_pipeline(name: str, body: Any) -> ExportPipeline:
    """An ExportPipeline from an ACR body; ``name`` comes from the route."""
    validate_name(name)
    props = _properties(body)
    target = StorageLocation.parse(props.get("target"), "properties.target")
    options = _options(props.get("options"), "properties.options", EXPORT_OPTIONS)
    source, _ = _registry_endpoint(props.get("source"), "properties.source",
                                   credentials_claim(ExportPipeline.collection, name))
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
        raise _bad(path, 'must be {"FROM": "TO"}, ["FROM=TO"] or [["FROM", "TO"]]')
    for i, item in enumerate(items):
        if isinstance(item, str):
            old, sep, new = item.partition("=")
            item = [old, new] if sep else None
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, str) and is_valid_repository(x) for x in item)):
            raise _bad(f"{path}[{i}]", "must map one repository path to another (FROM=TO)")
        pairs[item[0]] = item[1]
    return pairs


def parse_import_pipeline(name: str, body: Any) -> ImportPipeline:
    """An ImportPipeline from an ACR body; ``name`` comes from the route."""
    validate_name(name)
    props = _properties(body)
    source = StorageLocation.parse(props.get("source"), "properties.source")
    trigger = _object(props.get("trigger"), "properties.trigger", required=False)
    source_trigger = _object(trigger.get("sourceTrigger"), "properties.trigger.sourceTrigger", required=False)
    status = _choice(source_trigger.get("status"), "properties.trigger.sourceTrigger.status",
                     ("Enabled", "Disabled"), "Enabled")
    options = _options(props.get("options"), "properties.options", IMPORT_OPTIONS)
    target, raw_target = _registry_endpoint(props.get("target"), "properties.target",
                                            credentials_claim(ImportPipeline.collection, name))
    prefix = (_string(raw_target.get("repositoryPrefix"), "properties.target.repositoryPrefix", required=False)
              or "").strip("/")
    if prefix and not is_valid_repository(prefix):
        raise _bad("properties.target.repositoryPrefix", f"{prefix!r} is not a repository path")
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
    text = _string(value, path)
    assert text is not None
    match = _ARM_PIPELINE_RE.match(text)
    if match:
        kind: Kind = "export" if match["collection"].lower() == "exportpipelines" else "import"
        return PipelineRef(kind, validate_name(match["name"], path))
    if "/" in text:
        raise _bad(path, "must be .../registries/REGISTRY/exportPipelines/NAME (or importPipelines), or a bare name")
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
                raise _bad("properties.request.target.name", "required for a run of an export pipeline (the blob name)")
            if not self.artifacts:
                raise _bad("properties.request.artifacts", "required for a run of an export pipeline")
        elif not self.source_name:
            raise _bad("properties.request.source.name", "required for a run of an import pipeline (the blob name)")

    def properties(self) -> dict[str, Any]:
        data: dict[str, Any] = {"request": self.request}
        if self.force_update_tag is not None:
            data["forceUpdateTag"] = self.force_update_tag
        return data


def _blob_ref(value: Any, path: str) -> str | None:
    if value is None:
        return None
    raw = _object(value, path)
    _choice(raw.get("type"), f"{path}.type", (BLOB_TYPE,), BLOB_TYPE)
    name = _string(raw.get("name"), f"{path}.name", max_length=1024)
    assert name is not None
    if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        raise _bad(f"{path}.name", f"{name!r} is not a blob name")
    return name


def parse_pipeline_run(name: str, body: Any) -> PipelineRun:
    """A PipelineRun from an ACR body. Which of target/source is needed is checked by :meth:`check_kind`."""
    validate_name(name)
    props = _properties(body)
    request = _object(props.get("request"), "properties.request")
    pipeline = parse_pipeline_resource_id(request.get("pipelineResourceId"))
    artifacts = _string_list(request.get("artifacts"), "properties.request.artifacts")
    for i, artifact in enumerate(artifacts):
        try:
            ArtifactSpec.parse(artifact, allow_glob=True)
        except InvalidReferenceError as exc:
            raise _bad(f"properties.request.artifacts[{i}]", str(exc)) from exc
    target_name = _blob_ref(request.get("target"), "properties.request.target")
    source_name = _blob_ref(request.get("source"), "properties.request.source")
    digest = _string(request.get("catalogDigest"), "properties.request.catalogDigest", required=False)
    if digest is not None and not is_valid_digest(digest):
        raise _bad("properties.request.catalogDigest", "must be sha256:<64 hex>")
    tag = props.get("forceUpdateTag")
    if tag is not None and not isinstance(tag, str):
        raise _bad("properties.forceUpdateTag", "must be a string")
    return PipelineRun(name=name, pipeline=pipeline, request=request, force_update_tag=tag, artifacts=artifacts,
                       target_name=target_name, source_name=source_name, catalog_digest=digest)


# --------------------------------------------------------------------------- importImage


@dataclass
class ImportImage:
    """ACR's ImportImageParameters, with targets made explicit (``repo:tag`` each)."""

    registry_uri: str | None
    resource_id: str | None
    source_image: str
    credentials: Credentials | None
    target_tags: list[str]
    untagged_target_repositories: list[str]
    mode: str


def parse_import_image(body: Any) -> ImportImage:
    """ImportImageParameters. Without targets, the source image's repository and tag are the target."""
    raw = _object(body, "body")
    source = _object(raw.get("source"), "source")
    registry_uri = source.get("registryUri")
    resource_id = _string(source.get("resourceId"), "source.resourceId", required=False)
    if registry_uri is None and resource_id is None:
        raise _bad("source.registryUri", "one of source.registryUri and source.resourceId is required")
    if registry_uri is not None and resource_id is not None:
        raise _bad("source.resourceId", "give source.registryUri or source.resourceId, not both")
    host = registry_host(registry_uri, "source.registryUri") if registry_uri is not None else None
    image = _string(source.get("sourceImage"), "source.sourceImage", max_length=512)
    assert image is not None
    try:
        spec = ArtifactSpec.parse(image)
    except InvalidReferenceError as exc:
        raise _bad("source.sourceImage", str(exc)) from exc
    credentials = _credentials(source.get("credentials"), "source.credentials")
    mode = _choice(raw.get("mode"), "mode", IMPORT_MODES, "NoForce")
    tags: list[str] = []
    for i, text in enumerate(_string_list(raw.get("targetTags"), "targetTags")):
        try:
            target = ArtifactSpec.parse(text)
        except InvalidReferenceError as exc:
            raise _bad(f"targetTags[{i}]", str(exc)) from exc
        if target.digest:
            raise _bad(f"targetTags[{i}]", "must be repo[:tag], not a digest")
        explicit = ":" in text
        tags.append(f"{target.repository}:{target.tag if explicit else (spec.tag or 'latest')}")
    untagged = _string_list(raw.get("untaggedTargetRepositories"), "untaggedTargetRepositories")
    for i, repo in enumerate(untagged):
        if not is_valid_repository(repo):
            raise _bad(f"untaggedTargetRepositories[{i}]", f"{repo!r} is not a repository name")
    if not tags and not untagged:
        if spec.tag and not spec.digest:
            tags = [f"{spec.repository}:{spec.tag}"]
        else:
            untagged = [spec.repository]
    return ImportImage(registry_uri=host, resource_id=resource_id, source_image=image, credentials=credentials,
                       target_tags=tags, untagged_target_repositories=untagged, mode=mode)


# --------------------------------------------------------------------------- ARM shapes


def resource_id(collection: str, name: str) -> str:
    return f"{REGISTRY_ID}/{collection}/{name}"


def arm_resource(collection: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "name", "type", "properties"}`` as ARM answers for a registry child resource."""
    return {"id": resource_id(collection, name), "name": name, "type": f"{PROVIDER}/{collection}",
            "properties": properties}
