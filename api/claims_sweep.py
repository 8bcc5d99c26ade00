"""The claims sweep: a timer trigger deleting secrets and plans that outlived their runs.

Runs on ``%FERRY_CLAIMS_SWEEP_SCHEDULE%`` (NCRONTAB, a required app setting; infra/ and
local.settings.json.example set it hourly). Claims written more than
``FERRY_CLAIMS_MAX_AGE_HOURS`` ago (48 by default) are deleted, except those of a run whose
orchestration is still going and the credentials of a pipeline that still exists (they go when
the pipeline is deleted). Runs normally delete their own claims when they end; the sweep catches
what a crash, a terminated run or a lost host left behind.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

from api._http import off_loop, settings
from api.runs import run_state
from ferry.azure.claims import claim_store, sweep
from ferry.settings import CLAIMS_SWEEP_SCHEDULE

bp = df.Blueprint()
log = logging.getLogger("ferry.sweep")


async def sweep_claims(client: df.DurableOrchestrationClient) -> list[str]:
    """Delete the stale claims; the names deleted."""
    current = settings()
    store = claim_store(current)
    cutoff = datetime.now(UTC) - timedelta(hours=current.claims_max_age_hours)
    stale = await off_loop(store.older_than, cutoff)
    instances = sorted({name.split("/")[1] for name in stale if name.startswith("runs/") and name.count("/") > 1})
    states = await asyncio.gather(*(client.get_status(i) for i in instances))
    active = {i for i, status in zip(instances, states, strict=True) if (s := run_state(status)) and s.active}
    deleted = await off_loop(sweep, store, cutoff, active.__contains__)
    log.info("claims sweep: %d of %d stale claims deleted (%d runs still going)", len(deleted), len(stale),
             len(active))
    return deleted


@bp.function_name("claims_sweep")
@bp.timer_trigger(arg_name="timer", schedule=f"%{CLAIMS_SWEEP_SCHEDULE}%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def claims_sweep(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await sweep_claims(client)
