"""The blob trigger that starts imports when an archive lands.

Path and connection come from app settings: ``FERRY_IMPORT_BLOB_PATH`` (e.g. ``transfer/{name}``)
on the storage connection ``FERRY_IMPORT_STORAGE``. ``FERRY_IMPORT_TRIGGER_SOURCE`` picks the
trigger's source: ``EventGrid`` in production (needs an Event Grid subscription) or polling
(``LogsAndContainerScan``, the default, which works with Azurite under Core Tools).

For each ImportPipeline whose trigger is Enabled and whose source container holds the blob, one
PipelineRun named after the pipeline and the blob version (its ETag) is created and started, so
a trigger that fires twice for the same version imports once. Blobs without Ferry's metadata are
logged and ignored; an archive whose metadata does not match its contents is refused by the run,
which reports it as Failed without importing.
"""


import hashlib
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob_binding
from azure.storage.blob import BlobClient

from api._http import off_loop, resource_store, settings
from api.runs import RUNS, start_run
from ferry.archive.catalog import is_ferry_archive
from ferry.azure.blob import BlobLocation
from ferry.azure.errors import translate_azure_errors
from ferry.egress import EgressPolicy
from ferry.errors import ConflictError, UsageError
from ferry.jobs.endpoints import check_job
from ferry.redact import redact
from ferry.settings import IMPORT_BLOB_PATH, IMPORT_STORAGE, Settings
from ferry.transfer.build import pipeline_run_job
from ferry.transfer.models import PipelineRun, parse_import_pipeline

bp = df.Blueprint()
log = logging.getLogger("ferry.trigger")


def trigger_source(current: Settings | None = None) -> func.BlobSource:
    """EventGrid when the app setting says so, else polling (what Core Tools and Azurite support)."""
    wanted = (current or Settings.from_env()).import_trigger_source
    return func.BlobSource.EVENT_GRID if wanted == "EventGrid" else func.BlobSource.LOGS_AND_CONTAINER_SCAN


def run_name(pipeline: str, blob: str, etag: str) -> str:
    """A run name unique to (pipeline, blob, version), within ACR's 5-50 characters."""
    return f"{pipeline[:30]}-{hashlib.sha256(f'{blob}|{etag}'.encode()).hexdigest()[:12]}"


def _same_container(pipeline_uri: str, blob: BlobLocation) -> bool:
    try:
        watched = BlobLocation.parse(pipeline_uri.rstrip("/") + "/x")
    except Exception:
        return False
    return (watched.endpoint.rstrip("/").lower(), watched.container) == (blob.endpoint.rstrip("/").lower(),
                                                                         blob.container)


def _blob_properties(archive: BlobClient, location: BlobLocation) -> tuple[str, dict[str, str]]:
    """The blob's version (ETag) and metadata: one HEAD, never its content."""
    with translate_azure_errors(f"archive {location}"):
        properties = archive.get_blob_properties()
    return str(properties.etag).strip('"'), dict(properties.metadata or {})


async def handle_archive(archive: BlobClient, client: Any) -> list[str]:
    """Start an import for every enabled pipeline watching the blob ``archive`` names; the runs started."""
    current = settings()
    location = BlobLocation.parse(archive.url)
    etag, metadata = await off_loop(_blob_properties, archive, location)
    if not is_ferry_archive(metadata):
        log.info("blob %s has no Ferry archive metadata; ignored", location)
        return []
    store = resource_store(current)
    started = []
    for record in await off_loop(store.list, "importPipelines"):
        pipeline = parse_import_pipeline(record.name, record.body, default_registry=current.registry)
        if not pipeline.trigger_enabled or not _same_container(pipeline.source.uri, location):
            continue
        name_ = run_name(record.name, location.blob, etag)
        if await off_loop(store.find, RUNS, name_) is not None:
            log.info("blob %s version %s was already imported by run %s", location, etag, name_)
            continue
        run = PipelineRun.for_blob(name_, pipeline, location.blob, force_update_tag=etag)
        try:
            job = pipeline_run_job(pipeline, run, current)
            check_job(job, EgressPolicy.from_settings(current))
            await start_run(store, client, run, pipeline, job, None)
        except ConflictError:  # the trigger fired twice at once; the other call started it
            log.info("run %s was started by a concurrent trigger", name_)
            continue
        except UsageError as exc:  # this pipeline cannot run (e.g. a host off the allow-list); others may
            log.error("importPipelines/%s: no import of %s: %s", record.name, location, redact(str(exc)))
            continue
        started.append(name_)
    if not started:
        log.info("no enabled import pipeline started for %s", location)
    return started


@bp.function_name("import_trigger")
@bp.blob_trigger(arg_name="archive", path=f"%{IMPORT_BLOB_PATH}%", connection=IMPORT_STORAGE,
                 source=trigger_source())
@bp.durable_client_input(client_name="client")
async def import_trigger(archive: blob_binding.BlobClient, client: df.DurableOrchestrationClient) -> None:
    """The worker hands over a BlobClient (an SDK-type binding), so a multi-gigabyte archive is never
    loaded to start an import: the run reads it by range."""
    name = getattr(archive, "blob_name", "") or ""
    try:
        started = await handle_archive(archive, client)
        log.info("archive %s: started %s", name, ", ".join(started) or "nothing")
    except Exception as exc:
        log.error("archive %s: import not started: %s", name, redact(str(exc)))
        raise
