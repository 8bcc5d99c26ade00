"""``copy_job``: plan → batches of blobs fanned out in waves → finish; ``copy_batches`` runs a slice
of the batches as a sub-orchestration when a job has too many for one orchestrator's history.

Input of ``copy_job``: ``{"job": JobSpec JSON (ferry/jobs/spec.py), "prefix": claim prefix, "stage":
label, "progress": [start, end]}``. Output: ``{"outcome": JobOutcome JSON}`` or ``{"error": message}``.
Every batch ends as one BatchOutcome JSON (:mod:`ferry.jobs.phases`): the activity's, or
:func:`~ferry.jobs.phases.batch_failure` when it failed after its retries.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from ferry.jobs.phases import batch_failure
from orchestrations.progress import scaled, status

bp = df.Blueprint()

#: Batches per wave: how many transfer activities are in flight at once from one orchestrator.
WAVE = 8
#: Batches one orchestrator runs itself; more are split into ``copy_batches`` sub-orchestrations.
INLINE_BATCHES = 64
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=4)


def run_waves(context: df.DurableOrchestrationContext, job: dict[str, Any], prefix: str, indexes: list[int],
              report: Any = None) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Run ``transfer_batch`` for ``indexes`` in waves; a batch that still fails after its retries
    becomes a failed BatchOutcome (the finish step fails every blob it held, and their artifacts)."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(indexes), WAVE):
        wave = indexes[start:start + WAVE]
        tasks = [context.call_activity_with_retry("transfer_batch", RETRY, {"job": job, "prefix": prefix, "index": i})
                 for i in wave]
        try:
            results += (yield context.task_all(tasks))
        except Exception:
            # Some batch exhausted its retries; run the wave's batches one by one to see which (those
            # that succeeded find their blobs present and finish at once).
            for index in wave:
                try:
                    results.append((yield context.call_activity_with_retry(
                        "transfer_batch", RETRY, {"job": job, "prefix": prefix, "index": index})))
                except Exception as exc:
                    results.append(batch_failure(index, str(exc)))
        if report is not None:
            report(start + len(wave))
    return results


@bp.orchestration_trigger(context_name="context")
def copy_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    return (yield from copy_job_steps(context, context.get_input()))


def copy_job_steps(context: df.DurableOrchestrationContext,
                   spec: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """The steps of ``copy_job``, for an orchestrator to run inline (``yield from``) so that the
    progress it reports lands in that orchestrator's own custom status."""
    job, prefix, stage = spec["job"], spec["prefix"], spec.get("stage", "copy")
    start, end = spec.get("progress", [0, 100])
    context.set_custom_status(status(stage, start, step="planning"))
    planned = yield context.call_activity_with_retry("plan_job", RETRY, {"job": job, "prefix": prefix})
    if "error" in planned:
        return {"error": planned["error"]}
    total = int(planned["batches"])
    context.set_custom_status(status(stage, scaled(0, total, start + 5, end - 5), step="copying",
                                     batches=total, bytes=planned["bytes"]))
    results: list[dict[str, Any]] = []
    if total <= INLINE_BATCHES:
        def report(done: int) -> None:
            context.set_custom_status(status(stage, scaled(done, total, start + 5, end - 5), step="copying",
                                             batchesDone=done, batches=total, bytes=planned["bytes"]))

        results = yield from run_waves(context, job, prefix, list(range(total)), report)
    else:
        slices = [list(range(i, min(i + INLINE_BATCHES, total))) for i in range(0, total, INLINE_BATCHES)]
        children = [context.call_sub_orchestrator("copy_batches", {"job": job, "prefix": prefix, "indexes": s},
                                                  f"{context.instance_id}:batches:{n}")
                    for n, s in enumerate(slices)]
        for part in (yield context.task_all(children)):
            results += part
    context.set_custom_status(status(stage, end - 5, step="finishing", batches=total))
    finished = yield context.call_activity_with_retry(
        "finish_job", RETRY, {"job": job, "prefix": prefix, "outcomes": results})
    # The plan and batch state go whether the finish worked or not: nothing reads them again.
    yield context.call_activity_with_retry("cleanup_claims", RETRY, {"prefix": f"{prefix}/"})
    if "error" in finished:
        return {"error": finished["error"]}
    context.set_custom_status(status(stage, end, step="done"))
    return {"outcome": finished}


@bp.orchestration_trigger(context_name="context")
def copy_batches(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[dict[str, Any]]]:
    spec = context.get_input()
    return (yield from run_waves(context, spec["job"], spec["prefix"], list(spec["indexes"])))
