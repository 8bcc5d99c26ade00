"""Scheduled syncs over HTTP, and the timer that starts them (auth level FUNCTION).

* ``PUT/GET/DELETE /api/syncs/{name}``, ``GET /api/syncs``: definitions in the ARM-like shape of
  :mod:`ferry.sync.definition`, validated completely at PUT (400 naming the JSON path, hosts off
  the allow-list refused); source credentials and webhook secrets go to a claim, never echoed.
* ``POST /api/syncs/{name}/run[?dryRun=true]``: one tick now, as the singleton ``sync-<name>``
  (409 while one is still going). ``GET /api/syncs/{name}/runs``: its runs, newest first.
* ``POST /api/syncs/{name}/rollback {"tag", "to"}``: the stable tag back to an earlier promotion.
* ``sync_timer`` on ``%FERRY_SYNC_TICK%``: starts every enabled sync whose own schedule is due,
  skipping (and logging) one still running.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api._http import (
    async_errors,
    delete_claim,
    json_response,
    off_loop,
    put_claim,
    request_body,
    resource_store,
    route_name,
    settings,
)
from api.runs import run_state
from ferry.egress import EgressPolicy
from ferry.errors import ConflictError, FerryError, UsageError
from ferry.jobs.endpoints import JobEnvironment
from ferry.settings import SYNC_TICK
from ferry.sync.definition import parse_sync
from ferry.sync.stored import (
    STATE,
    SYNCS,
    TableSyncState,
    is_due,
    last_started,
    resolved,
    secrets_claim,
    split_secrets,
)
from ferry.sync.tick import rollback
from ferry.transfer.models import arm_resource
from ferry.transfer.store import Record
from orchestrations.sync import sync_instance_id

bp = df.Blueprint()
log = logging.getLogger("ferry.syncs")
SYNC_ORCHESTRATOR = "sync_run"


def _view(record: Record) -> dict[str, Any]:
    properties = {**(record.body.get("properties") or {}), "provisioningState": "Succeeded"}
    return arm_resource(SYNCS, record.name, properties)


async def _put(req: func.HttpRequest) -> func.HttpResponse:
    name, body, current = route_name(req), request_body(req), settings()
    sync = parse_sync(name, body)
    store = resource_store(current)
    (await off_loop(resolved, sync, store)).check_egress(EgressPolicy.from_settings(current))
    public, secrets = split_secrets(body if isinstance(body, dict) else {})
    if secrets["source"] and isinstance(secrets["source"], dict):
        secrets["source"]["registry"] = sync.source_registry  # bound to the registry it was given for
    existed = await off_loop(store.find, SYNCS, name) is not None
    if secrets["source"] or any(secrets["webhooks"]) or secrets["eventGrid"]:
        await off_loop(put_claim, secrets_claim(name), secrets)
    else:
        await off_loop(delete_claim, secrets_claim(name))
    record = await off_loop(store.put, SYNCS, Record(name, {"properties": public.get("properties") or {}}))
    return json_response(_view(record), 200 if existed else 201)


async def _start(client: Any, name: str, dry_run: bool) -> str:
    """Start the singleton tick of ``name``; ConflictError while one is still going."""
    instance_id = sync_instance_id(name)
    state = run_state(await client.get_status(instance_id))
    if state is not None and state.active:
        raise ConflictError(f"syncs/{name}: a tick is still running ({instance_id})")
    await client.start_new(SYNC_ORCHESTRATOR, instance_id, client_input={"name": name, "dryRun": dry_run})
    return instance_id


async def _run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    name = route_name(req)
    await off_loop(resource_store().get, SYNCS, name)  # 404 for an unknown sync
    dry_run = (req.params.get("dryRun") or "").lower() == "true"
    response: func.HttpResponse = client.create_check_status_response(req, await _start(client, name, dry_run))
    return response


async def _rollback(req: func.HttpRequest) -> func.HttpResponse:
    name, body, current = route_name(req), request_body(req), settings()
    if not isinstance(body, dict) or not isinstance(body.get("tag"), str) or not isinstance(body.get("to"), str):
        raise UsageError('body: must be {"tag": STABLE_TAG, "to": UNIQUE_TAG}')
    record = await off_loop(resource_store(current).get, SYNCS, name)
    sync = parse_sync(name, record.body)
    env = JobEnvironment(settings=current, egress=EgressPolicy.from_settings(current))
    digest = await off_loop(rollback, sync, body["tag"], body["to"], env)
    return json_response({"tag": body["tag"], "to": body["to"], "digest": digest})


@bp.function_name("sync_put")
@bp.route(route="syncs/{name}", methods=[func.HttpMethod.PUT])
@async_errors
async def sync_put(req: func.HttpRequest) -> func.HttpResponse:
    return await _put(req)


@bp.function_name("sync_get")
@bp.route(route="syncs/{name}", methods=[func.HttpMethod.GET])
@async_errors
async def sync_get(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(_view(await off_loop(resource_store().get, SYNCS, route_name(req))))


@bp.function_name("sync_list")
@bp.route(route="syncs", methods=[func.HttpMethod.GET])
@async_errors
async def sync_list(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"value": [_view(r) for r in await off_loop(resource_store().list, SYNCS)]})


@bp.function_name("sync_delete")
@bp.route(route="syncs/{name}", methods=[func.HttpMethod.DELETE])
@async_errors
async def sync_delete(req: func.HttpRequest) -> func.HttpResponse:
    name, store = route_name(req), resource_store()
    deleted = await off_loop(store.delete, SYNCS, name)
    await off_loop(store.delete, STATE, name)
    if deleted:
        await off_loop(delete_claim, secrets_claim(name))
    return func.HttpResponse(status_code=200 if deleted else 204)


@bp.function_name("sync_run_start")
@bp.route(route="syncs/{name}/run", methods=[func.HttpMethod.POST])
@bp.durable_client_input(client_name="client")
@async_errors
async def sync_run_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _run(req, client)


@bp.function_name("sync_runs")
@bp.route(route="syncs/{name}/runs", methods=[func.HttpMethod.GET])
@async_errors
async def sync_runs(req: func.HttpRequest) -> func.HttpResponse:
    store, name = resource_store(), route_name(req)
    await off_loop(store.get, SYNCS, name)
    state = await off_loop(TableSyncState, store, name)
    return json_response({"value": state.runs()})


@bp.function_name("sync_rollback")
@bp.route(route="syncs/{name}/rollback", methods=[func.HttpMethod.POST])
@async_errors
async def sync_rollback(req: func.HttpRequest) -> func.HttpResponse:
    return await _rollback(req)


async def start_due_syncs(client: Any, now: datetime) -> list[str]:
    """Start every enabled sync whose schedule is due; the names started."""
    store = resource_store()
    started = []
    for record in await off_loop(store.list, SYNCS):
        try:  # one sync stored under older rules must not stop the others
            sync = parse_sync(record.name, record.body)
            if not sync.enabled:
                continue
            # Running first, then when it last started: a tick records its start before it ends, so
            # read in this order a tick that ends in between is seen either running or recorded.
            running = run_state(await client.get_status(sync_instance_id(record.name)))
            if running is not None and running.active:
                log.info("sync %s: its last tick is still running; not started", record.name)
                continue
            last = await off_loop(last_started, store, record.name)
            if not is_due(sync.schedule, datetime.fromisoformat(last) if last else None, now):
                continue
        except (FerryError, ValueError) as exc:
            log.warning("sync %s is not started by the timer: %s", record.name, exc)
            continue
        try:
            await _start(client, record.name, False)
            started.append(record.name)
        except ConflictError:
            log.info("sync %s is due but its last tick is still running; skipped", record.name)
    return started


@bp.function_name("sync_timer")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SYNC_TICK}%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def sync_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    started = await start_due_syncs(client, datetime.now(UTC))
    log.info("sync timer: started %s", ", ".join(started) or "nothing")
