"""ACR Transfer's REST shapes over HTTP: export/import pipelines, pipeline runs and importImage.

Routes (auth level FUNCTION, the app's default):

* ``PUT/GET/DELETE /api/exportPipelines/{name}``, ``GET /api/exportPipelines``
* ``PUT/GET/DELETE /api/importPipelines/{name}``, ``GET /api/importPipelines``
* ``PUT/GET/DELETE /api/pipelineRuns/{name}``, ``GET /api/pipelineRuns``
* ``POST /api/importImage``

Resources are kept in Table Storage (:mod:`ferry.resources`); models and validation are in
:mod:`ferry.pipelines`. A PipelineRun PUT starts the ``pipeline_run`` orchestration with::

    {"runName": str, "kind": "export" | "import", "pipeline": <stored pipeline resource JSON>,
     "request": <properties.request as given>}

and importImage starts ``image_import`` with::

    {"source": {"registry": HOST, "image": sourceImage, "credentialsRef": CLAIM | None},
     "targetTags": ["repo:tag", ...], "untaggedTargetRepositories": [...], "mode": "NoForce" | "Force",
     "targetRegistry": FERRY_REGISTRY}

plus ``"handoff": {"resourceId": TARGET_ACR}`` (and ``source.resourceId`` as given) when the app
settings ``FERRY_ACR_IMPORT_HANDOFF=true`` and ``FERRY_TARGET_ACR_RESOURCE_ID`` hand the import to ACR.

Credentials never enter orchestration input (it is kept in the task hub's history): they go to a
claim (:mod:`ferry.claims`) and only its name travels. Errors answer in ARM's shape
``{"error": {"code", "message"}}``: 400 names the bad field, 404 the unknown resource, 409 a run
that is still running; messages pass through :func:`ferry.redact.redact`.
"""

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import azure.durable_functions as df
import azure.functions as func

from ferry.errors import AccessDeniedError, ConflictError, FerryError, NotFoundError, UsageError
from ferry.pipelines import (
    COLLECTIONS,
    REGISTRY_SETTING,
    ExportPipeline,
    ImportPipeline,
    Kind,
    PipelineRef,
    PipelineRun,
    arm_resource,
    default_registry,
    parse_export_pipeline,
    parse_import_image,
    parse_import_pipeline,
    parse_pipeline_run,
)
from ferry.redact import redact
from ferry.resources import Record, ResourceStore, connection_string

bp = df.Blueprint()
log = logging.getLogger("ferry.api")

RUNS = "pipelineRuns"
PIPELINE_RUN_ORCHESTRATOR = "pipeline_run"
IMAGE_IMPORT_ORCHESTRATOR = "image_import"
_ACTIVE = {"Pending", "Running", "ContinuedAsNew", "Suspended"}
_T = TypeVar("_T")


# --------------------------------------------------------------------------- plumbing


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    return _json({"error": {"code": code, "message": redact(message)}}, status)


def _error_response(exc: Exception) -> func.HttpResponse:
    if isinstance(exc, UsageError):
        return _error(400, "BadRequest", str(exc))
    if isinstance(exc, NotFoundError):
        return _error(404, "ResourceNotFound", str(exc))
    if isinstance(exc, ConflictError):
        return _error(409, "Conflict", str(exc))
    if isinstance(exc, AccessDeniedError):
        return _error(403, "AuthorizationFailed", str(exc))
    if isinstance(exc, FerryError):
        log.error("request failed: %s", redact(str(exc)))
        return _error(503 if exc.transient else 500, "ServiceUnavailable" if exc.transient else "InternalServerError",
                      str(exc))
    log.error("unexpected error: %s: %s", type(exc).__name__, redact(str(exc)))
    return _error(500, "InternalServerError", "internal error; see the function app's logs")


def _sync_errors(fn: Callable[..., func.HttpResponse]) -> Callable[..., func.HttpResponse]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            return _error_response(exc)

    return wrapper


def _async_errors(fn: Callable[..., Awaitable[func.HttpResponse]]) -> Callable[..., Awaitable[func.HttpResponse]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            return _error_response(exc)

    return wrapper


def _body(req: func.HttpRequest) -> Any:
    try:
        return json.loads(req.get_body() or b"null")
    except ValueError as exc:
        raise UsageError("body: not valid JSON") from exc


def _name(req: func.HttpRequest) -> str:
    return req.route_params.get("name", "")


_stores: dict[str, ResourceStore] = {}


def _store() -> ResourceStore:
    """One store per connection string (its tables are created once)."""
    conn = connection_string()
    if conn not in _stores:
        _stores[conn] = ResourceStore.from_connection_string(conn)
    return _stores[conn]


async def _io(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Blocking storage calls off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _put_claim(name: str, data: Any) -> str:
    from ferry.claims import claim_store

    return claim_store().put_json(name, data)


def _self_url(req: func.HttpRequest, path: str) -> str:
    """``path`` on the request's host, without the query (it may carry the function key)."""
    parts = urlsplit(req.url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- pipelines


def _pipeline_view(collection: str, record: Record) -> dict[str, Any]:
    properties = dict(record.body.get("properties") or {})
    properties["provisioningState"] = "Succeeded"
    return arm_resource(collection, record.name, properties)


def _put_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    name = _name(req)
    body = _body(req)
    pipeline: ExportPipeline | ImportPipeline = (
        parse_export_pipeline(name, body) if kind == "export" else parse_import_pipeline(name, body))
    registry = pipeline.source if isinstance(pipeline, ExportPipeline) else pipeline.target
    if registry.credentials is not None:
        registry.credentials_ref = _put_claim(pipeline.credentials_claim, registry.credentials.to_claim())
    store = _store()
    collection = COLLECTIONS[kind]
    existed = store.find(collection, name) is not None
    record = store.put(collection, Record(name, {"properties": pipeline.properties()}))
    log.info("%s/%s %s", collection, name, "updated" if existed else "created")
    return _json(_pipeline_view(collection, record), 200 if existed else 201)


def _get_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    collection = COLLECTIONS[kind]
    return _json(_pipeline_view(collection, _store().get(collection, _name(req))))


def _list_pipelines(kind: Kind) -> func.HttpResponse:
    collection = COLLECTIONS[kind]
    return _json({"value": [_pipeline_view(collection, r) for r in _store().list(collection)]})


def _delete_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    deleted = _store().delete(COLLECTIONS[kind], _name(req))
    return func.HttpResponse(status_code=200 if deleted else 204)


@bp.function_name("export_pipeline_put")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.PUT])
@_sync_errors
def export_pipeline_put(req: func.HttpRequest) -> func.HttpResponse:
    return _put_pipeline(req, "export")


@bp.function_name("export_pipeline_get")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.GET])
@_sync_errors
def export_pipeline_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get_pipeline(req, "export")


@bp.function_name("export_pipeline_delete")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.DELETE])
@_sync_errors
def export_pipeline_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete_pipeline(req, "export")


@bp.function_name("export_pipeline_list")
@bp.route(route="exportPipelines", methods=[func.HttpMethod.GET])
@_sync_errors
def export_pipeline_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list_pipelines("export")


@bp.function_name("import_pipeline_put")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.PUT])
@_sync_errors
def import_pipeline_put(req: func.HttpRequest) -> func.HttpResponse:
    return _put_pipeline(req, "import")


@bp.function_name("import_pipeline_get")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.GET])
@_sync_errors
def import_pipeline_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get_pipeline(req, "import")


@bp.function_name("import_pipeline_delete")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.DELETE])
@_sync_errors
def import_pipeline_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete_pipeline(req, "import")


@bp.function_name("import_pipeline_list")
@bp.route(route="importPipelines", methods=[func.HttpMethod.GET])
@_sync_errors
def import_pipeline_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list_pipelines("import")


# --------------------------------------------------------------------------- runs


def _resolve_pipeline(store: ResourceStore, ref: PipelineRef) -> tuple[Kind, Record]:
    """The pipeline a run names: by the id's collection, or by a bare name in both (400 if in both)."""
    path = "properties.request.pipelineResourceId"
    kinds: list[Kind] = [ref.kind] if ref.kind else ["export", "import"]
    found = [(kind, record) for kind in kinds if (record := store.find(COLLECTIONS[kind], ref.name)) is not None]
    if not found:
        where = " or ".join(f"{COLLECTIONS[k]}/{ref.name}" for k in kinds)
        raise NotFoundError(f"{path}: pipeline {where} not found", status=404)
    if len(found) > 1:
        raise UsageError(f"{path}: {ref.name!r} names both an export and an import pipeline; "
                         "give the full resource id (.../exportPipelines/NAME or .../importPipelines/NAME)")
    return found[0]


def _runtime_status(status: Any) -> str | None:
    if not status:
        return None
    value = getattr(status, "runtime_status", None)
    return getattr(value, "value", value)


def _run_response(record: Record, status: Any) -> dict[str, Any]:
    """ACR's ``properties.response`` from the stored run and the orchestration's status."""
    fields = record.fields
    runtime = _runtime_status(status)
    custom = getattr(status, "custom_status", None) if status else None
    output = getattr(status, "output", None) if status else None
    response: dict[str, Any] = {"status": "Unknown", "importedArtifacts": [], "catalogDigest": None,
                                "pipelineRunErrorMessage": None, "artifacts": []}
    percentage = custom.get("percentage") if isinstance(custom, dict) else None
    if fields.get("startError"):
        response.update(status="Failed", pipelineRunErrorMessage=redact(str(fields["startError"])))
    elif runtime in _ACTIVE:
        response["status"] = "Running"
    elif runtime == "Completed":
        result = output if isinstance(output, dict) else {}
        response["status"] = result.get("status") or "Succeeded"
        response["importedArtifacts"] = list(result.get("importedArtifacts") or [])
        response["catalogDigest"] = result.get("catalogDigest")
        message = result.get("pipelineRunErrorMessage")
        response["pipelineRunErrorMessage"] = redact(str(message)) if message else None
        response["artifacts"] = list(result.get("artifacts") or [])
        percentage = 100
    elif runtime == "Failed":
        response.update(status="Failed", pipelineRunErrorMessage=redact(str(output or "the orchestration failed")))
    elif runtime in ("Terminated", "Canceled"):
        response.update(status="Canceled", pipelineRunErrorMessage=redact(str(output or "the run was canceled")))
    if percentage is not None:
        response["progress"] = {"percentage": str(int(percentage)) if isinstance(percentage, (int, float))
                                else str(percentage)}
    if status:
        response["startTime"] = _iso(getattr(status, "created_time", None))
        if runtime not in _ACTIVE:
            response["finishTime"] = _iso(getattr(status, "last_updated_time", None))
    pipeline = record.body.get("pipeline") or {}
    request = (record.body.get("properties") or {}).get("request") or {}
    storage = (pipeline.get("properties") or {}).get("target" if fields.get("kind") == "export" else "source") or {}
    side = "target" if fields.get("kind") == "export" else "source"
    blob = (request.get(side) or {}).get("name")
    if storage.get("uri") and blob:
        location = {"type": "AzureStorageBlob", "uri": f"{storage['uri']}/{blob}"}
        if storage.get("keyVaultUri"):
            location["keyVaultUri"] = storage["keyVaultUri"]
        response[side] = location
    return response


def _run_view(record: Record, status: Any) -> dict[str, Any]:
    """The run in ARM shape; the stored pipeline snapshot (``body["pipeline"]``) is not shown."""
    properties = dict(record.body.get("properties") or {})
    properties["provisioningState"] = "Succeeded"
    properties["response"] = _run_response(record, status)
    return arm_resource(RUNS, record.name, properties)


async def _status_of(client: Any, record: Record) -> Any:
    instance_id = record.fields.get("instanceId")
    return await client.get_status(instance_id) if instance_id else None


def _status_headers(req: func.HttpRequest, name: str) -> dict[str, str]:
    url = _self_url(req, f"/api/{RUNS}/{name}")
    return {"Location": url, "Azure-AsyncOperation": url, "Retry-After": "5"}


async def _put_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    name = _name(req)
    run: PipelineRun = parse_pipeline_run(name, _body(req))
    store = _store()
    kind, pipeline = await _io(_resolve_pipeline, store, run.pipeline)
    run.check_kind(kind)
    existing = await _io(store.find, RUNS, name)
    if existing is not None:
        same = (existing.fields.get("requestHash") == run.request_hash
                and existing.fields.get("forceUpdateTag") == run.force_update_tag
                and existing.fields.get("pipeline") == f"{COLLECTIONS[kind]}/{pipeline.name}")
        status = await _status_of(client, existing)
        if same:
            return _json(_run_view(existing, status), 200)
        if _runtime_status(status) in _ACTIVE:
            raise ConflictError(f"pipelineRuns/{name}: a run with this name is still running and the request "
                                "differs; wait for it to finish or use another run name")
    record = await start_run(store, client, run, kind, pipeline, existing)
    return _json(_run_view(record, await client.get_status(record.fields["instanceId"])), 202,
                 _status_headers(req, name))


async def start_run(store: ResourceStore, client: Any, run: PipelineRun, kind: Kind, pipeline: Record,
                    existing: Record | None) -> Record:
    """Store the run (creating it when ``existing`` is None: a concurrent creator gets ConflictError)
    and start its ``pipeline_run`` orchestration. Used by PUT pipelineRuns and the import blob trigger."""
    name = run.name
    instance_id = f"run-{name}-{uuid.uuid4().hex[:8]}"
    pipeline_json = {"name": pipeline.name, **pipeline.body}
    fields = {"instanceId": instance_id, "requestHash": run.request_hash, "forceUpdateTag": run.force_update_tag,
              "kind": kind, "pipeline": f"{COLLECTIONS[kind]}/{pipeline.name}"}
    record = Record(name, {"properties": run.properties(), "pipeline": pipeline_json}, fields)
    record = await _io(store.put, RUNS, record, etag=existing.etag if existing else None, create=existing is None)
    client_input = {"runName": name, "kind": kind, "pipeline": pipeline_json, "request": run.request}
    try:
        await client.start_new(PIPELINE_RUN_ORCHESTRATOR, instance_id, client_input=client_input)
    except Exception as exc:
        record.fields["startError"] = f"the orchestration did not start: {exc}"
        await _io(store.put, RUNS, record)
        raise
    log.info("pipelineRuns/%s started %s (%s run of %s)", name, instance_id, kind, pipeline.name)
    return record


async def _get_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    record = await _io(_store().get, RUNS, _name(req))
    return _json(_run_view(record, await _status_of(client, record)))


async def _list_runs(client: Any) -> func.HttpResponse:
    records = await _io(_store().list, RUNS)
    statuses = await asyncio.gather(*(_status_of(client, r) for r in records))
    return _json({"value": [_run_view(r, s) for r, s in zip(records, statuses, strict=True)]})


async def _delete_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    store = _store()
    record = await _io(store.find, RUNS, _name(req))
    if record is None:
        return func.HttpResponse(status_code=204)
    status = await _status_of(client, record)
    if _runtime_status(status) in _ACTIVE:
        try:
            await client.terminate(record.fields["instanceId"], "pipeline run deleted")
        except Exception as exc:  # the run is gone from the API either way; say so in the log
            log.warning("pipelineRuns/%s: could not terminate %s: %s", record.name, record.fields["instanceId"],
                        redact(str(exc)))
    await _io(store.delete, RUNS, record.name)
    return func.HttpResponse(status_code=200)


@bp.function_name("pipeline_run_put")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.PUT])
@bp.durable_client_input(client_name="client")
@_async_errors
async def pipeline_run_put(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _put_run(req, client)


@bp.function_name("pipeline_run_get")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.GET])
@bp.durable_client_input(client_name="client")
@_async_errors
async def pipeline_run_get(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _get_run(req, client)


@bp.function_name("pipeline_run_delete")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.DELETE])
@bp.durable_client_input(client_name="client")
@_async_errors
async def pipeline_run_delete(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _delete_run(req, client)


@bp.function_name("pipeline_run_list")
@bp.route(route="pipelineRuns", methods=[func.HttpMethod.GET])
@bp.durable_client_input(client_name="client")
@_async_errors
async def pipeline_run_list(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _list_runs(client)


# --------------------------------------------------------------------------- importImage


def _target_registry() -> str:
    try:
        return default_registry("targetRegistry")
    except UsageError as exc:  # not the caller's fault: the app is not configured
        raise FerryError(f"app setting {REGISTRY_SETTING} (the registry importImage writes to) is not set") from exc


def _optional_target_registry() -> str | None:
    try:
        return default_registry("targetRegistry")
    except UsageError:
        return None


async def _import_image(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    from ferry.acr import handoff_target

    params = parse_import_image(_body(req))
    handoff = handoff_target()  # the target ACR's resource id when ACR imports the image itself
    target = _target_registry() if handoff is None else _optional_target_registry()
    if params.registry_uri is not None:
        host = params.registry_uri
    else:
        from ferry.acr import login_server

        assert params.resource_id is not None
        host = await _io(login_server, params.resource_id)
    credentials_ref = None
    if params.credentials is not None:
        credentials_ref = await _io(_put_claim, f"credentials/importImage/{uuid.uuid4().hex}",
                                    params.credentials.to_claim())
    client_input: dict[str, Any] = {
        "source": {"registry": host, "image": params.source_image, "credentialsRef": credentials_ref},
        "targetTags": params.target_tags,
        "untaggedTargetRepositories": params.untagged_target_repositories,
        "mode": params.mode,
        "targetRegistry": target,
    }
    if handoff is not None:
        if params.resource_id is not None:  # ACR is given the source as the caller gave it
            client_input["source"]["resourceId"] = params.resource_id
        client_input["handoff"] = {"resourceId": handoff}
    instance_id = f"importimage-{uuid.uuid4().hex[:12]}"
    await client.start_new(IMAGE_IMPORT_ORCHESTRATOR, instance_id, client_input=client_input)
    log.info("importImage %s: %s/%s -> %s", instance_id, host, params.source_image, handoff or target)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@bp.function_name("import_image")
@bp.route(route="importImage", methods=[func.HttpMethod.POST])
@bp.durable_client_input(client_name="client")
@_async_errors
async def import_image(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _import_image(req, client)
