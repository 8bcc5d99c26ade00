"""The importImage handoff: ACR's own importImage does the copy (see :mod:`ferry.transfer.handoff`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.results import job_environment, permanent_failures_as_results
from ferry.transfer.handoff import Handoff, import_image

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def acr_import_image(payload: dict[str, Any]) -> dict[str, Any]:
    """Handoff JSON → ``{"imported": [...]}`` or ``{"error"}``. Credentials are read from the claim
    ``credentials_ref`` here, so they never enter orchestration history."""

    def work() -> dict[str, Any]:
        handoff = Handoff.from_json(payload)
        env = job_environment()
        credentials = env.claims.get_json(handoff.credentials_ref) if handoff.credentials_ref else None
        return {"imported": import_image(handoff, credentials, env.settings)}

    return permanent_failures_as_results(work, "acr_import_image")
