"""The importImage handoff: ACR's own importImage does the copy (see :func:`ferry.acr.import_image`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.results import permanent_failures_as_results
from ferry import acr
from ferry.claims import claim_store

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def acr_import_image(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"resourceId": target ACR, "params": image_import input}`` → ``{"imported": [...]}`` or
    ``{"error"}``. Credentials are read from the claim ``params.source.credentialsRef`` here, so they
    never enter orchestration history."""

    def work() -> dict[str, Any]:
        params = payload["params"]
        ref = (params.get("source") or {}).get("credentialsRef")
        credentials = claim_store().get_json(ref) if ref else None
        return {"imported": acr.import_image(payload["resourceId"], params, credentials)}

    return permanent_failures_as_results(work, "acr_import_image")
