"""``sync_run``: one tick of a sync, started by hand (``POST /api/syncs/{name}/run``) or by the
timer, as a singleton (instance id ``sync-<name>``; host.json refuses a duplicate start).

Input ``{"name", "dryRun", "maxHolds"?}``; output the run record, or ``{"error"}``. The run id is the tick's
UTC time (``YYYYMMDDHHMMSS``, from the orchestration clock, so replay is deterministic).

When the source registry asks to hold off (``Retry-After`` past a request's budget, or
``RateLimit-Remaining: 0``), the run waits on a durable timer (no compute held, and the timer's
singleton rule starts no other tick meanwhile) and resumes, at most :data:`MAX_HOLDS` times.

When an external validator answers ``pending``, the run waits (a durable wait: no compute held)
for each verdict as the external event :func:`verdict_event` raised by
``POST /api/syncs/{name}/runs/{run}/verdict``, each until its policy's timeout; a verdict not
given by then is a rejection. The custom status lists what is awaited (``step: "awaiting
verdicts"``), which is what the callback checks. Then the tick's second activity judges and
promotes with the verdicts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrations.copy_job import RETRY
from orchestrations.progress import status

bp = df.Blueprint()
AWAITING = "awaiting verdicts"
#: How often one run holds off when the source registry asks it to, and the longest hold.
MAX_HOLDS = 5
MAX_HOLD_S = 6 * 3600.0
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")


def sync_instance_id(name: str) -> str:
    return f"sync-{name.lower()}"


def verdict_event(run_id: str, policy: str, digest: str) -> str:
    """One event name per awaited verdict: the SDK keeps only the last of several same-name events
    raised before a wait, so verdicts on different digests must not share a name. The SDK puts the
    name into the raise-event URL's path unescaped, so a policy id that is not plain (ids may hold
    any non-space character, such as ``?``, ``#``, ``/`` or ``..``) is named by its hash."""
    if not _PLAIN_ID.fullmatch(policy):
        policy = "~" + hashlib.sha256(policy.encode()).hexdigest()[:32]
    return f"verdict-{run_id}-{policy}-{digest}"


@bp.orchestration_trigger(context_name="context")
def sync_run(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    spec = context.get_input()
    run_id = context.current_utc_datetime.strftime("%Y%m%d%H%M%S")
    context.set_custom_status(status("sync", 0, step="tick", run=run_id))
    tick = {"name": spec["name"], "runId": run_id, "dryRun": bool(spec.get("dryRun"))}
    result = yield context.call_activity_with_retry("sync_tick", RETRY, tick)
    holds = max(0, min(int(spec.get("maxHolds", MAX_HOLDS)), MAX_HOLDS))
    for _ in range(holds):  # the registry asked to hold off: a durable timer, then resume the run
        wait = result.get("retry_after")
        if wait is None or "error" in result:
            break
        seconds = min(max(float(wait), 1.0), MAX_HOLD_S)
        context.set_custom_status(status("sync", 10, step="holding off", run=run_id, seconds=seconds))
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
        result = yield context.call_activity_with_retry("sync_tick", RETRY, tick)
    awaiting = list(result.get("awaiting") or [])
    if awaiting and "error" not in result:
        verdicts = yield from wait_for_verdicts(context, run_id, awaiting)
        context.set_custom_status(status("sync", 90, step="finish", run=run_id))
        result = yield context.call_activity_with_retry(
            "sync_tick", RETRY, {"name": spec["name"], "runId": run_id, "verdicts": verdicts})
    context.set_custom_status(status("sync", 100, step="done", run=run_id))
    return dict(result)


def wait_for_verdicts(context: df.DurableOrchestrationContext, run_id: str,
                      awaiting: list[dict[str, Any]]) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Each awaited ``{"tag", "digest", "policy", "timeoutSeconds"}`` with its ``verdict`` and
    ``reason``: the one raised for it, or a rejection once its timeout passed."""
    started = context.current_utc_datetime
    pending = {verdict_event(run_id, str(a["policy"]), str(a["digest"])): a for a in awaiting}
    deadlines = {name: started + timedelta(seconds=int(a["timeoutSeconds"])) for name, a in pending.items()}
    decided: list[dict[str, Any]] = []
    while pending:
        for name in [n for n in pending if deadlines[n] <= context.current_utc_datetime]:
            late = pending.pop(name)
            decided.append({**late, "verdict": "reject",
                            "reason": f"no verdict came within {late['timeoutSeconds']} s"})
        if not pending:
            break
        context.set_custom_status(status("sync", 50, step=AWAITING, run=run_id, awaiting=[
            {"tag": a["tag"], "digest": a["digest"], "policy": a["policy"]} for a in pending.values()]))
        waits = {name: context.wait_for_external_event(name) for name in pending}
        timer = context.create_timer(min(deadlines[n] for n in pending))
        winner = yield context.task_any([*waits.values(), timer])
        if winner is timer:
            continue
        timer.cancel()
        name = next(n for n, task in waits.items() if task is winner)
        given = winner.result if isinstance(winner.result, dict) else {}
        decided.append({**pending.pop(name), "verdict": given.get("verdict"), "reason": given.get("reason")})
    return decided
