"""The activity of a sync: one tick (ferry/sync/tick.py) with the app's settings, claims and tables."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.results import job_environment, permanent_failures_as_results
from ferry.errors import BlobNotFoundError
from ferry.sync.definition import parse_sync
from ferry.sync.stored import SYNCS, TableSyncState, resolved, secrets_claim, with_secrets
from ferry.sync.tick import finish_awaiting, run_sync
from ferry.transfer.store import ResourceStore

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def sync_tick(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "runId", "dryRun"}`` → the run record (tags, verdicts, requests, the verdicts it
    awaits), or ``{"error"}``. With ``"verdicts": [...]`` it finishes that run with the verdicts
    given later (see ``ferry.sync.tick.finish_awaiting``) instead of ticking."""

    def work() -> dict[str, Any]:
        env = job_environment()
        store = ResourceStore.from_settings(env.settings)
        name = str(payload["name"])
        try:
            secrets = env.claims.get_json(secrets_claim(name))
        except BlobNotFoundError:
            secrets = None
        sync = resolved(parse_sync(name, with_secrets(store.get(SYNCS, name).body, secrets)), store)
        state, run_id = TableSyncState(store, name), str(payload["runId"])
        if "verdicts" in payload:
            return finish_awaiting(sync, state, env, run_id=run_id, verdicts=list(payload["verdicts"])).to_json()
        return run_sync(sync, state, env, run_id=run_id, dry_run=bool(payload.get("dryRun")),
                        later_verdicts=True).to_json()

    return permanent_failures_as_results(work, f"sync_tick {payload.get('name')}")
