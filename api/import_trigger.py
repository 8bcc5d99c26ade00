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

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api.pipelines import RUNS, _io, _store, start_run
from ferry.appsettings import APP_STORAGE_SETTING, setting_connection_string
from ferry.archive.catalog import is_ferry_archive
from ferry.errors import ConflictError
from ferry.pipelines import arm_resource, parse_import_pipeline, parse_pipeline_run
from ferry.redact import redact
from ferry.storage import BlobLocation, blob_client, translate_errors

bp = df.Blueprint()
log = logging.getLogger("ferry.trigger")

PATH_SETTING = "FERRY_IMPORT_BLOB_PATH"
CONNECTION_SETTING = "FERRY_IMPORT_STORAGE"
SOURCE_SETTING = "FERRY_IMPORT_TRIGGER_SOURCE"


def trigger_source() -> func.BlobSource:
    """EventGrid when the app setting says so, else polling (what Core Tools and Azurite support)."""
    wanted = os.environ.get(SOURCE_SETTING, "").replace(" ", "").lower()
    return func.BlobSource.EVENT_GRID if wanted == "eventgrid" else func.BlobSource.LOGS_AND_CONTAINER_SCAN


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


def _blob_properties(location: BlobLocation) -> tuple[str, dict[str, str]]:
    from ferry.storage import ConnectionStringAuth

    connection = setting_connection_string(CONNECTION_SETTING, fallback=APP_STORAGE_SETTING)
    auth = ConnectionStringAuth((connection,)) if "AccountName=" in connection else None
    with translate_errors(f"archive {location}"):
        properties = blob_client(location, auth).get_blob_properties()
    return str(properties.etag).strip('"'), dict(properties.metadata or {})


async def handle_archive(name: str, uri: str, client: Any) -> list[str]:
    """Start an import for every enabled pipeline watching the blob at ``uri``; the runs started."""
    location = BlobLocation.parse(uri)
    etag, metadata = await _io(_blob_properties, location)
    if not is_ferry_archive(metadata):
        log.info("blob %s has no Ferry archive metadata; ignored", location)
        return []
    store = _store()
    started = []
    for record in await _io(store.list, "importPipelines"):
        pipeline = parse_import_pipeline(record.name, record.body)
        if not pipeline.trigger_enabled or not _same_container(pipeline.source.uri, location):
            continue
        name_ = run_name(record.name, location.blob, etag)
        if await _io(store.find, RUNS, name_) is not None:
            log.info("blob %s version %s was already imported by run %s", location, etag, name_)
            continue
        run = parse_pipeline_run(name_, {"properties": {
            "request": {"pipelineResourceId": arm_resource("importPipelines", record.name, {})["id"],
                        "source": {"type": "AzureStorageBlob", "name": location.blob}},
            "forceUpdateTag": etag}})
        try:
            await start_run(store, client, run, "import", record, None)
        except ConflictError:  # the trigger fired twice at once; the other call started it
            log.info("run %s was started by a concurrent trigger", name_)
            continue
        started.append(name_)
    if not started:
        log.info("no enabled import pipeline started for %s", location)
    return started


@bp.function_name("import_trigger")
@bp.blob_trigger(arg_name="archive", path=f"%{PATH_SETTING}%", connection=CONNECTION_SETTING,
                 source=trigger_source())
@bp.durable_client_input(client_name="client")
async def import_trigger(archive: func.InputStream, client: df.DurableOrchestrationClient) -> None:
    """Never reads the archive's content here: the import run reads it by range."""
    try:
        started = await handle_archive(archive.name or "", archive.uri or "", client)
        log.info("archive %s: started %s", archive.name, ", ".join(started) or "nothing")
    except Exception as exc:
        log.error("archive %s: import not started: %s", archive.name, redact(str(exc)))
        raise
