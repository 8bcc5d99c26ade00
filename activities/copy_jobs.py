"""Activities of a copy job: plan it, move one batch of blobs, finish it, clean up its claims."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.results import job_environment, permanent_failures_as_results
from ferry.jobs.phases import finish_job, load_spec, pack, plan_job, transfer_batch, unpack
from ferry.jobs.spec import JobSpec

bp = df.Blueprint()


@bp.function_name("plan_job")
@bp.activity_trigger(input_name="payload")
def plan_job_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"job" (JobSpec JSON, or packed), "prefix"}`` → PlanSummary JSON (the job, its plan and batch
    slices kept as claims under the prefix: every later activity gets the prefix only), or ``{"error"}``."""
    return permanent_failures_as_results(
        lambda: plan_job(JobSpec.from_json(unpack(payload["job"])), job_environment(), payload["prefix"]).to_json(),
        "plan_job")


@bp.function_name("transfer_batch")
@bp.activity_trigger(input_name="payload")
def transfer_batch_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"prefix", "index"}`` → ``{"index", "error"}`` (the outcome itself is kept as a claim for the
    finish); raises only for transient faults. The spec is read from the prefix, never carried."""
    index = int(payload["index"])

    def work() -> dict[str, Any]:
        env = job_environment()
        outcome = transfer_batch(load_spec(env, payload["prefix"], batch=True), env, payload["prefix"], index)
        return {"index": index, "error": outcome.error}

    result = permanent_failures_as_results(work, f"transfer_batch {index}")
    return {"index": index, "error": result["error"]} if "errorType" in result else result


@bp.function_name("finish_job")
@bp.activity_trigger(input_name="payload")
def finish_job_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"prefix", "failed": [{"index", "error"}]}`` (batches that failed after their retries) →
    JobOutcome JSON, :func:`~ferry.jobs.phases.pack`-ed, or ``{"error"}``."""
    def work() -> dict[str, Any]:
        env = job_environment()
        failed = {int(f["index"]): str(f["error"]) for f in payload.get("failed") or ()}
        return pack(finish_job(load_spec(env, payload["prefix"]), env, payload["prefix"], failed).to_json())

    return permanent_failures_as_results(work, "finish_job")


@bp.activity_trigger(input_name="payload")
def cleanup_claims(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"prefix"}`` (a finished job's plan and batch state) and/or ``{"names": [...]}`` (a run's
    one-time credentials) → how many claims were deleted."""
    def work() -> dict[str, Any]:
        claims = job_environment().claims
        deleted = claims.delete_prefix(payload["prefix"]) if payload.get("prefix") else 0
        deleted += sum(claims.delete(name) for name in payload.get("names") or ())
        return {"deleted": deleted}

    return permanent_failures_as_results(work, "cleanup_claims")
