"""Pipeline runs over HTTP, in ACR's shapes (auth level FUNCTION).

* ``PUT/GET/DELETE /api/pipelineRuns/{name}``, ``GET /api/pipelineRuns``

A PUT is validated completely before anything starts: the run body, the pipeline it names, and
the copy job built from both (400 naming the JSON path). The ``pipeline_run`` orchestration is
started with ``{"runName", "kind", "job": JobSpec JSON}``; a PUT with the same request and the same
``forceUpdateTag`` starts nothing new. :func:`start_run` is shared with the import blob trigger.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api._http import (
    async_errors,
    delete_claims,
    json_response,
    off_loop,
    request_body,
    resource_store,
    route_name,
    self_url,
    settings,
)
from ferry.egress import EgressPolicy
from ferry.errors import ConflictError, NotFoundError, UsageError
from ferry.jobs.endpoints import check_job
from ferry.jobs.progress import child_ids, combine
from ferry.jobs.spec import JobSpec
from ferry.redact import redact
from ferry.settings import Settings
from ferry.transfer.build import pipeline_run_job
from ferry.transfer.models import (
    COLLECTIONS,
    ExportPipeline,
    ImportPipeline,
    Kind,
    PipelineRef,
    PipelineRun,
    arm_resource,
    parse_export_pipeline,
    parse_import_pipeline,
    parse_pipeline_run,
)
from ferry.transfer.response import RunState, run_location, run_response
from ferry.transfer.store import Record, ResourceStore

bp = df.Blueprint()
log = logging.getLogger("ferry.api")

RUNS = "pipelineRuns"
PIPELINE_RUN_ORCHESTRATOR = "pipeline_run"


def resolve_pipeline(store: ResourceStore, ref: PipelineRef,
                     current: Settings) -> ExportPipeline | ImportPipeline:
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
    kind, record = found[0]
    parse = parse_export_pipeline if kind == "export" else parse_import_pipeline
    return parse(record.name, record.body, default_registry=current.registry)


def run_state(status: Any, children: list[Any] | None = None) -> RunState | None:
    """The Durable client's status object as a :class:`RunState`; with the statuses of the children
    its custom status names, their progress combined into it (:mod:`ferry.jobs.progress`)."""
    if not status:
        return None
    runtime = getattr(status, "runtime_status", None)
    custom = status.custom_status
    if children:
        custom = combine(custom, [getattr(child, "custom_status", None) for child in children])
    return RunState(runtime_status=getattr(runtime, "value", runtime), custom_status=custom,
                    output=status.output, created=status.created_time, updated=status.last_updated_time)


def run_view(record: Record, state: RunState | None) -> dict[str, Any]:
    """The run in ARM shape with its ``properties.response``."""
    properties = dict(record.body.get("properties") or {})
    properties["provisioningState"] = "Succeeded"
    properties["response"] = run_response(state, record.body.get("location"), record.fields.get("startError"))
    return arm_resource(RUNS, record.name, properties)


async def status_of(client: Any, record: Record) -> RunState | None:
    """The run's state; while its batches run in sub-orchestrations, with their progress."""
    instance_id = record.fields.get("instanceId")
    status = await client.get_status(instance_id) if instance_id else None
    state = run_state(status)
    if state is None or not state.active or not (ids := child_ids(state.custom_status)):
        return state
    children = await asyncio.gather(*(client.get_status(child) for child in ids))
    return run_state(status, [c for c in children if c])


async def start_run(store: ResourceStore, client: Any, run: PipelineRun,
                    pipeline: ExportPipeline | ImportPipeline, job: JobSpec, existing: Record | None) -> Record:
    """Store the run (creating it when ``existing`` is None: a concurrent creator gets ConflictError)
    and start its ``pipeline_run`` orchestration."""
    instance_id = f"run-{run.name}-{uuid.uuid4().hex[:8]}"
    fields = {"instanceId": instance_id, "requestHash": run.request_hash, "forceUpdateTag": run.force_update_tag,
              "kind": pipeline.kind, "pipeline": f"{pipeline.collection}/{pipeline.name}"}
    record = Record(run.name, {"properties": run.properties(), "location": run_location(pipeline, run)}, fields)
    record = await off_loop(store.put, RUNS, record, etag=existing.etag if existing else None,
                            create=existing is None)
    client_input = {"runName": run.name, "kind": pipeline.kind, "job": job.to_json()}
    try:
        await client.start_new(PIPELINE_RUN_ORCHESTRATOR, instance_id, client_input=client_input)
    except Exception as exc:
        record.fields["startError"] = f"the orchestration did not start: {type(exc).__name__}"
        await off_loop(store.put, RUNS, record)
        raise
    log.info("pipelineRuns/%s started %s (%s run of %s)", run.name, instance_id, pipeline.kind, pipeline.name)
    return record


def _status_headers(req: func.HttpRequest, name: str) -> dict[str, str]:
    url = self_url(req, f"/api/{RUNS}/{name}")
    return {"Location": url, "Azure-AsyncOperation": url, "Retry-After": "5"}


async def _put_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    current = settings()
    run = parse_pipeline_run(route_name(req), request_body(req))
    store = resource_store(current)
    pipeline = await off_loop(resolve_pipeline, store, run.pipeline, current)
    job = pipeline_run_job(pipeline, run, current)
    check_job(job, EgressPolicy.from_settings(current))
    existing = await off_loop(store.find, RUNS, run.name)
    if existing is not None:
        same = (existing.fields.get("requestHash") == run.request_hash
                and existing.fields.get("forceUpdateTag") == run.force_update_tag
                and existing.fields.get("pipeline") == f"{pipeline.collection}/{pipeline.name}")
        state = await status_of(client, existing)
        if same:
            return json_response(run_view(existing, state), 200)
        if state is not None and state.active:
            raise ConflictError(f"pipelineRuns/{run.name}: a run with this name is still running and the request "
                                "differs; wait for it to finish or use another run name")
    record = await start_run(store, client, run, pipeline, job, existing)
    return json_response(run_view(record, run_state(await client.get_status(record.fields["instanceId"]))), 202,
                         _status_headers(req, run.name))


async def _get_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    record = await off_loop(resource_store().get, RUNS, route_name(req))
    return json_response(run_view(record, await status_of(client, record)))


async def _list_runs(client: Any) -> func.HttpResponse:
    records = await off_loop(resource_store().list, RUNS)
    statuses = await asyncio.gather(*(status_of(client, r) for r in records))
    return json_response({"value": [run_view(r, s) for r, s in zip(records, statuses, strict=True)]})


async def _delete_run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    store = resource_store()
    record = await off_loop(store.find, RUNS, route_name(req))
    if record is None:
        return func.HttpResponse(status_code=204)
    state = await status_of(client, record)
    if state is not None and state.active:
        try:
            await client.terminate(record.fields["instanceId"], "pipeline run deleted")
        except Exception as exc:  # the run is gone from the API either way; say so in the log
            log.warning("pipelineRuns/%s: could not terminate %s: %s", record.name, record.fields["instanceId"],
                        redact(str(exc)))
    await off_loop(store.delete, RUNS, record.name)
    await off_loop(delete_claims, f"runs/{record.fields['instanceId']}/")  # a terminated run's plan
    return func.HttpResponse(status_code=200)


@bp.function_name("pipeline_run_put")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.PUT])
@bp.durable_client_input(client_name="client")
@async_errors
async def pipeline_run_put(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _put_run(req, client)


@bp.function_name("pipeline_run_get")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.GET])
@bp.durable_client_input(client_name="client")
@async_errors
async def pipeline_run_get(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _get_run(req, client)


@bp.function_name("pipeline_run_delete")
@bp.route(route="pipelineRuns/{name}", methods=[func.HttpMethod.DELETE])
@bp.durable_client_input(client_name="client")
@async_errors
async def pipeline_run_delete(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _delete_run(req, client)


@bp.function_name("pipeline_run_list")
@bp.route(route="pipelineRuns", methods=[func.HttpMethod.GET])
@bp.durable_client_input(client_name="client")
@async_errors
async def pipeline_run_list(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _list_runs(client)
