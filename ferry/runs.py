"""Turn ACR-shaped pipelines and run requests into copy jobs, and job outcomes into ACR responses.

Pure functions of their inputs and the app settings passed in (the orchestrations stay free of
I/O; an activity calls these with ``os.environ``). The shapes are ACR's:

* export: ``pipeline.properties.target {uri (container URL), keyVaultUri, storageAccessMode}`` and
  ``request {artifacts, target.name}`` → registry → archive blob ``uri/target.name``.
* import: ``pipeline.properties.source {uri, keyVaultUri, storageAccessMode}`` and
  ``request {source.name}`` → archive blob → registry.
* image import: ACR's ImportImageParameters → registry → registry.

Ferry extensions: ``properties.source.registryUri`` on export pipelines and
``properties.target {registryUri, repositoryPrefix, remap}`` on import pipelines; both default
to the ``FERRY_REGISTRY`` app setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.errors import UsageError
from ferry.pipelines import StorageLocation, parse_export_pipeline, parse_import_pipeline
from ferry.reference import ArtifactSpec, Reference

REGISTRY_SETTING = "FERRY_REGISTRY"
INSECURE_SETTING = "FERRY_INSECURE_REGISTRIES"


def _registry(value: str | None, settings: Mapping[str, str], field: str) -> str:
    registry = (value or settings.get(REGISTRY_SETTING) or "").removeprefix("https://").removeprefix("http://")
    registry = registry.rstrip("/")
    if not registry:
        raise UsageError(f"{field}: no registry given and app setting {REGISTRY_SETTING} is not set")
    return registry


def _registry_spec(registry: str, settings: Mapping[str, str], credentials: str | None = None) -> dict[str, Any]:
    insecure = {h.strip() for h in settings.get(INSECURE_SETTING, "").split(",") if h.strip()}
    return {"kind": "registry", "registry": registry, "credentials": credentials, "insecure": registry in insecure}


def _blob_url(container: str, name: str, field: str) -> str:
    if not container:
        raise UsageError(f"{field}: the pipeline has no storage container uri")
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise UsageError(f"{field}: {name!r} is not a valid blob name")
    return f"{container.rstrip('/')}/{name}"


def _storage(location: StorageLocation) -> dict[str, Any]:
    return {"mode": location.storage_access_mode, "keyVaultUri": location.key_vault_uri}


def export_job(pipeline: Mapping[str, Any], request: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, Any]:
    """The job for an export run; ``artifacts`` are ``repo``, ``repo:tag``, ``repo:GLOB`` or ``repo@digest``."""
    model = parse_export_pipeline(str(pipeline.get("name") or ""), pipeline)
    registry = model.source.registry_uri
    artifacts = request.get("artifacts") or []
    if not isinstance(artifacts, list) or not artifacts:
        raise UsageError("properties.request.artifacts: give at least one artifact")
    refs = []
    for index, text in enumerate(artifacts):
        try:
            spec = ArtifactSpec.parse(str(text), allow_glob=True)
        except UsageError as exc:
            raise UsageError(f"properties.request.artifacts[{index}]: {exc}") from exc
        refs.append(f"{registry}/{spec}")
    url = _blob_url(model.target.uri, str((request.get("target") or {}).get("name") or ""),
                    "properties.request.target.name")
    return {
        "source": _registry_spec(registry, settings, model.source.credentials_ref),
        "destination": {"kind": "archive", "url": url, "storage": _storage(model.target),
                        "overwrite": "OverwriteBlobs" in model.options},
        "export": {"refs": refs, "max_artifacts": int(settings.get("FERRY_MAX_ARTIFACTS", "10000"))},
        "options": {"continue_on_errors": "ContinueOnErrors" in model.options},
    }


def import_job(pipeline: Mapping[str, Any], request: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, Any]:
    """The job for an import run of blob ``source.name`` in the pipeline's container."""
    model = parse_import_pipeline(str(pipeline.get("name") or ""), pipeline)
    url = _blob_url(model.source.uri, str((request.get("source") or {}).get("name") or ""),
                    "properties.request.source.name")
    return {
        "source": {"kind": "archive", "url": url, "storage": _storage(model.source)},
        "destination": _registry_spec(model.target.registry_uri, settings, model.target.credentials_ref),
        "import": {"prefix": model.repository_prefix, "remap": sorted(model.remap.items())},
        "options": {"continue_on_errors": "ContinueOnErrors" in model.options,
                    "overwrite_tags": "OverwriteTags" in model.options},
        "delete_source_on_success": "DeleteSourceBlobOnSuccess" in model.options,
    }


def image_import_job(params: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, Any]:
    """The job for ACR's importImage: ``source {registry, image, credentialsRef}``, ``targetTags``,
    ``untaggedTargetRepositories``, ``mode`` (NoForce | Force), ``targetRegistry``."""
    source = params.get("source") or {}
    image = str(source.get("image") or "")
    src_registry = str(source.get("registry") or "")
    if not src_registry:
        raise UsageError("source.registryUri: the source registry is required")
    try:
        reference = Reference.parse(f"{src_registry}/{image}" if image else "", default_registry=src_registry)
    except UsageError as exc:
        raise UsageError(f"source.sourceImage: {exc}") from exc
    registry = _registry(params.get("targetRegistry"), settings, "targetRegistry")
    requests = []
    for index, tag_text in enumerate(params.get("targetTags") or []):
        try:
            target = Reference.parse(f"{registry}/{tag_text}")
        except UsageError as exc:
            raise UsageError(f"targetTags[{index}]: {exc}") from exc
        requests.append({"source_repository": reference.repository, "source_reference": reference.identifier,
                         "target_repository": target.repository, "target_tags": [target.tag or "latest"]})
    for index, repo in enumerate(params.get("untaggedTargetRepositories") or []):
        try:
            spec = ArtifactSpec.parse(str(repo))
        except UsageError as exc:
            raise UsageError(f"untaggedTargetRepositories[{index}]: {exc}") from exc
        requests.append({"source_repository": reference.repository, "source_reference": reference.identifier,
                         "target_repository": spec.repository, "target_tags": []})
    if not requests:  # ACR's default: the source image's own name and tag
        requests.append({"source_repository": reference.repository, "source_reference": reference.identifier,
                         "target_repository": reference.repository,
                         "target_tags": [reference.tag] if reference.tag else []})
    return {
        "source": _registry_spec(reference.registry, settings, source.get("credentialsRef")),
        "destination": _registry_spec(registry, settings),
        "requests": requests,
        "options": {"overwrite_tags": params.get("mode") == "Force", "continue_on_errors": False},
    }


def run_output(outcome: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    """The orchestration output in PipelineRun ``properties.response`` terms."""
    if error is not None or outcome is None:
        return {"status": "Failed", "importedArtifacts": [], "catalogDigest": None,
                "pipelineRunErrorMessage": error or "the run failed", "artifacts": []}
    report = outcome.get("report") or {}
    artifacts = report.get("artifacts") or []
    copied = [a["target"] for a in artifacts if a.get("status") == "copied"]
    failed = [a for a in artifacts if a.get("status") != "copied"]
    message = "; ".join(f"{a['source']}: {a.get('error')}" for a in failed) or None
    return {"status": "Succeeded" if report.get("ok") else "Failed", "importedArtifacts": copied,
            "catalogDigest": outcome.get("catalogDigest"), "pipelineRunErrorMessage": message,
            "artifacts": artifacts, "deletedSource": outcome.get("deletedSource")}
