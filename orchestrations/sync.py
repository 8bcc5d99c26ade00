"""``sync_run``: one tick of a sync, started by hand (``POST /api/syncs/{name}/run``) or by the
timer, as a singleton (instance id ``sync-<name>``; host.json refuses a duplicate start).

Input ``{"name", "dryRun"}``; output the run record, or ``{"error"}``. The run id is the tick's
UTC time (``YYYYMMDDHHMMSS``, from the orchestration clock, so replay is deterministic).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.copy_job import RETRY
from orchestrations.progress import status

bp = df.Blueprint()


def sync_instance_id(name: str) -> str:
    return f"sync-{name.lower()}"


@bp.orchestration_trigger(context_name="context")
def sync_run(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    spec = context.get_input()
    run_id = context.current_utc_datetime.strftime("%Y%m%d%H%M%S")
    context.set_custom_status(status("sync", 0, step="tick", run=run_id))
    result = yield context.call_activity_with_retry(
        "sync_tick", RETRY, {"name": spec["name"], "runId": run_id, "dryRun": bool(spec.get("dryRun"))})
    context.set_custom_status(status("sync", 100, step="done", run=run_id))
    return dict(result)
