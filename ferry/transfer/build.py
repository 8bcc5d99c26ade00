"""ACR's models turned into copy jobs: pure functions of the parsed models and the settings.

* export: pipeline ``target {uri (container URL), keyVaultUri, storageAccessMode}`` and run
  ``request {artifacts, target.name}`` → registry → archive blob ``uri/target.name``.
* import: pipeline ``source {uri, keyVaultUri, storageAccessMode}`` and run ``request
  {source.name}`` → archive blob → registry (under ``repositoryPrefix``, after ``remap``).
* importImage: registry → registry, or a :class:`~ferry.transfer.handoff.Handoff` to the target ACR.

May be imported by the faces (api, cli, activities).
"""

from __future__ import annotations

from typing import Any

from ferry.egress import EgressPolicy
from ferry.errors import FerryError, UsageError
from ferry.jobs.spec import (
    ArchiveContents,
    ArchiveEndpoint,
    Artifacts,
    ExportRefs,
    JobOptions,
    JobSpec,
    RegistryEndpoint,
    StorageAccess,
)
from ferry.plan import CopyRequest
from ferry.reference import ArtifactSpec, endpoint_for
from ferry.settings import REGISTRY, Settings
from ferry.transfer.handoff import Handoff
from ferry.transfer.import_image import ImportImage
from ferry.transfer.models import ExportPipeline, ImportPipeline, PipelineRegistry, PipelineRun, StorageLocation


def blob_url(location: StorageLocation, name: str) -> str:
    """The blob ``name`` in the pipeline's container."""
    return f"{location.uri.rstrip('/')}/{name}"


def _storage(location: StorageLocation) -> StorageAccess:
    return StorageAccess(location.storage_access_mode, location.key_vault_uri)  # type: ignore[arg-type]


def _registry(host: str, settings: Settings, credentials_ref: str | None = None) -> RegistryEndpoint:
    return RegistryEndpoint(host, credentials_ref, insecure=host in settings.insecure_registries)


def check_pipeline_egress(pipeline: ExportPipeline | ImportPipeline, policy: EgressPolicy) -> None:
    """Refuse a pipeline that names a host off the allow-list, before anything connects (the error
    names the field and the app setting to change)."""
    export = isinstance(pipeline, ExportPipeline)
    storage_path, storage = ("properties.target", pipeline.target) if export else ("properties.source", pipeline.source)
    registry = pipeline.source if isinstance(pipeline, ExportPipeline) else pipeline.target
    assert isinstance(storage, StorageLocation) and isinstance(registry, PipelineRegistry)
    registry_path = "properties.source.registryUri" if export else "properties.target.registryUri"
    policy.check_host(endpoint_for(registry.registry_uri), registry_path)
    storage.check_egress(policy, storage_path)


def export_job(pipeline: ExportPipeline, run: PipelineRun, settings: Settings) -> JobSpec:
    """The job of an export run (``run.check_kind("export")`` has passed)."""
    assert run.target_name is not None
    if len(run.artifacts) > settings.max_artifacts:
        raise UsageError(f"properties.request.artifacts: {len(run.artifacts)} artifacts, more than the limit of "
                         f"{settings.max_artifacts} (app setting FERRY_MAX_ARTIFACTS); split the run")
    return JobSpec(
        source=_registry(pipeline.source.registry_uri, settings, pipeline.source.credentials_ref),
        destination=ArchiveEndpoint(blob_url(pipeline.target, run.target_name), _storage(pipeline.target),
                                    overwrite="OverwriteBlobs" in pipeline.options),
        select=(ExportRefs(tuple(run.artifacts)),),
        options=JobOptions(continue_on_errors="ContinueOnErrors" in pipeline.options,
                           max_artifacts=settings.max_artifacts))


def import_job(pipeline: ImportPipeline, blob_name: str, settings: Settings) -> JobSpec:
    """The job of an import run of blob ``blob_name`` in the pipeline's container."""
    return JobSpec(
        source=ArchiveEndpoint(blob_url(pipeline.source, blob_name), _storage(pipeline.source),
                               delete_on_success="DeleteSourceBlobOnSuccess" in pipeline.options),
        destination=_registry(pipeline.target.registry_uri, settings, pipeline.target.credentials_ref),
        select=(ArchiveContents(pipeline.repository_prefix, tuple(sorted(pipeline.remap.items()))),),
        options=JobOptions(continue_on_errors="ContinueOnErrors" in pipeline.options,
                           overwrite_tags="OverwriteTags" in pipeline.options,
                           max_artifacts=settings.max_artifacts))


def pipeline_run_job(pipeline: ExportPipeline | ImportPipeline, run: PipelineRun, settings: Settings) -> JobSpec:
    """The copy job of ``run`` on ``pipeline``; UsageError naming the field when the run does not fit."""
    run.check_kind(pipeline.kind)
    if isinstance(pipeline, ExportPipeline):
        return export_job(pipeline, run, settings)
    assert run.source_name is not None
    return import_job(pipeline, run.source_name, settings)


def target_registry(settings: Settings) -> str:
    """The registry importImage writes to: ``FERRY_REGISTRY`` (the app is misconfigured without it)."""
    if not settings.registry:
        raise FerryError(f"app setting {REGISTRY} (the registry importImage writes to) is not set")
    return settings.registry


def image_import_job(params: ImportImage, source_registry: str, credentials_ref: str | None,
                     settings: Settings) -> JobSpec:
    """The job of an importImage Ferry copies itself, from ``source_registry`` (resolved from
    ``source.resourceId`` by the caller when that was given)."""
    source = ArtifactSpec.parse(params.source_image)
    reference = source.digest or source.tag or "latest"
    requests = [CopyRequest(source.repository, reference, repository, (tag,))
                for repository, tag in (t.rsplit(":", 1) for t in params.target_tags)]
    requests += [CopyRequest(source.repository, reference, repository, ())
                 for repository in params.untagged_target_repositories]
    if not requests:  # parse_import_image always names a target; this guards other callers
        raise UsageError("targetTags: give a target tag or an untagged target repository")
    return JobSpec(source=_registry(source_registry, settings, credentials_ref),
                   destination=_registry(target_registry(settings), settings),
                   select=(Artifacts(tuple(requests)),),
                   options=JobOptions(overwrite_tags=params.mode == "Force",
                                      max_artifacts=settings.max_artifacts))


def image_import_handoff(params: ImportImage, target_resource_id: str, credentials_ref: str | None) -> Handoff:
    """The importImage as the target ACR is given it: the source exactly as the caller named it."""
    return Handoff(target_resource_id=target_resource_id, source_image=params.source_image,
                   source_registry=params.registry_uri, source_resource_id=params.resource_id,
                   credentials_ref=credentials_ref, target_tags=tuple(params.target_tags),
                   untagged_target_repositories=tuple(params.untagged_target_repositories), mode=params.mode)


IMPORT_IMAGE_CREDENTIALS = "credentials/importImage/"


def one_time_credentials(image_import_input: dict[str, Any]) -> list[str]:
    """The claims holding an importImage caller's credentials, named in the orchestration input
    (``{"job": ...}`` or ``{"handoff": ...}``): deleted when the run ends."""
    if "handoff" in image_import_input:
        ref = Handoff.from_json(image_import_input["handoff"]).credentials_ref
    else:
        source = JobSpec.from_json(image_import_input["job"]).source
        ref = source.credentials_ref if isinstance(source, RegistryEndpoint) else None
    return [ref] if ref and ref.startswith(IMPORT_IMAGE_CREDENTIALS) else []
