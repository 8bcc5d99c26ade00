"""The activity of a sync: one tick (ferry/sync/tick.py) with the app's settings, claims and tables."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.results import job_environment, permanent_failures_as_results
from ferry.errors import BlobNotFoundError
from ferry.sync.definition import parse_sync
from ferry.sync.stored import SYNCS, TableSyncState, secrets_claim, with_secrets
from ferry.sync.tick import run_sync
from ferry.transfer.store import ResourceStore

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def sync_tick(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "runId", "dryRun"}`` → the run record (tags, verdicts, requests), or ``{"error"}``."""

    def work() -> dict[str, Any]:
        env = job_environment()
        store = ResourceStore.from_settings(env.settings)
        name = str(payload["name"])
        try:
            secrets = env.claims.get_json(secrets_claim(name))
        except BlobNotFoundError:
            secrets = None
        sync = parse_sync(name, with_secrets(store.get(SYNCS, name).body, secrets))
        run = run_sync(sync, TableSyncState(store, name), env, run_id=str(payload["runId"]),
                       dry_run=bool(payload.get("dryRun")))
        return run.to_json()

    return permanent_failures_as_results(work, f"sync_tick {payload.get('name')}")
