"""Activities of a copy job: plan it, move one batch of blobs, finish it; and prepare runs."""

from __future__ import annotations

import os
from typing import Any

import azure.durable_functions as df

from activities.results import permanent_failures_as_results
from ferry import jobs, runs
from ferry.claims import claim_store

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def plan_job(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"job", "prefix"}`` → plan summary (claims under prefix) or ``{"error"}``."""
    return permanent_failures_as_results(
        lambda: jobs.plan_job(payload["job"], claim_store(), payload["prefix"]), "plan_job")


@bp.activity_trigger(input_name="payload")
def transfer_batch(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"job", "prefix", "index"}`` → that batch's BlobBatchResult JSON or ``{"error"}``."""
    return permanent_failures_as_results(
        lambda: jobs.transfer_job_batch(payload["job"], claim_store(), payload["prefix"],
                                        int(payload["index"])), f"transfer_batch {payload.get('index')}")


@bp.activity_trigger(input_name="payload")
def finish_job(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"job", "prefix", "results", "batches"}`` → outcome (report, catalogDigest, ...) or ``{"error"}``."""
    return permanent_failures_as_results(
        lambda: jobs.finish_job(payload["job"], claim_store(), payload["prefix"],
                                payload["results"], int(payload["batches"])), "finish_job")


@bp.activity_trigger(input_name="payload")
def prepare_run(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"kind": "export"|"import"|"image_import", "pipeline", "request"}`` → ``{"job"}`` built with the app
    settings, or ``{"error"}`` naming the bad field."""
    settings = dict(os.environ)

    def build() -> dict[str, Any]:
        kind = payload["kind"]
        if kind == "export":
            return {"job": runs.export_job(payload["pipeline"], payload["request"], settings)}
        if kind == "import":
            return {"job": runs.import_job(payload["pipeline"], payload["request"], settings)}
        if kind == "image_import":
            return {"job": runs.image_import_job(payload["request"], settings)}
        return {"error": f"unknown run kind {kind!r}"}

    return permanent_failures_as_results(build, "prepare_run")


@bp.activity_trigger(input_name="payload")
def cleanup_claims(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"prefix"}`` → how many claims were deleted (plans and batch state of a finished job)."""
    return permanent_failures_as_results(
        lambda: {"deleted": claim_store().delete_prefix(payload["prefix"])}, "cleanup_claims")
