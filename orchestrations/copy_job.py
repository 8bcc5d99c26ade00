"""``copy_job``: plan → batches of blobs fanned out in waves → finish; ``copy_batches`` runs a slice
of the batches as a sub-orchestration when a job has too many for one orchestrator's history.

Input of ``copy_job``: ``{"job": JobSpec JSON (ferry/jobs/spec.py), "prefix": claim prefix, "stage":
label, "progress": [start, end]}``. Output: ``{"outcome": JobOutcome JSON}`` or ``{"error": message}``.
Only ``plan_job`` gets the job spec (it keeps it, the plan and each batch's slice as claims under
the prefix); ``transfer_batch`` gets ``{"prefix", "index"}`` and keeps its outcome as a claim;
``finish_job`` gets the prefix and the batches that failed after their retries
(:func:`~ferry.jobs.phases.batch_failure`). History stays small whatever the job's size.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from ferry.jobs.phases import batch_failure, pack, unpack
from ferry.jobs.progress import child_status, children_field
from orchestrations.progress import scaled, status

bp = df.Blueprint()

#: Batches per wave: how many transfer activities are in flight at once from one orchestrator.
WAVE = 8
#: Batches one orchestrator runs itself; more are split into ``copy_batches`` sub-orchestrations.
INLINE_BATCHES = 64
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=4)


def run_waves(context: df.DurableOrchestrationContext, prefix: str, indexes: list[int],
              report: Any = None) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Run ``transfer_batch`` for ``indexes`` in waves; return the batches that still failed after
    their retries, ``{"index", "error"}`` each (the finish fails every blob they held). Inputs and
    results are a prefix and an index, whatever the size of the job; outcomes stay in claims."""
    failed: list[dict[str, Any]] = []
    for start in range(0, len(indexes), WAVE):
        wave = indexes[start:start + WAVE]
        tasks = [context.call_activity_with_retry("transfer_batch", RETRY, {"prefix": prefix, "index": i})
                 for i in wave]
        try:
            results = yield context.task_all(tasks)
        except Exception:
            # Some batch exhausted its retries; run the wave's batches one by one to see which (those
            # that succeeded find their blobs present and finish at once).
            results = []
            for index in wave:
                try:
                    results.append((yield context.call_activity_with_retry(
                        "transfer_batch", RETRY, {"prefix": prefix, "index": index})))
                except Exception as exc:
                    results.append(batch_failure(index, str(exc)))
        failed += [{"index": r["index"], "error": r["error"]} for r in results if r.get("error")]
        if report is not None:
            report(start + len(wave))
    return failed


@bp.orchestration_trigger(context_name="context")
def copy_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    return (yield from copy_job_steps(context, context.get_input()))


def copy_job_steps(context: df.DurableOrchestrationContext,
                   spec: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """The steps of ``copy_job``, for an orchestrator to run inline (``yield from``) so that the
    progress it reports lands in that orchestrator's own custom status. Only ``plan_job`` gets the
    job spec; it keeps it as a claim, and every later activity gets the claim prefix."""
    job, prefix, stage = spec["job"], spec["prefix"], spec.get("stage", "copy")
    start, end = spec.get("progress", [0, 100])
    context.set_custom_status(status(stage, start, step="planning"))
    planned = yield context.call_activity_with_retry("plan_job", RETRY, {"job": pack(job), "prefix": prefix})
    if "error" in planned:
        return {"error": planned["error"]}
    total = int(planned["batches"])
    copying = {"step": "copying", "batches": total, "bytes": planned["bytes"]}
    context.set_custom_status(status(stage, scaled(0, total, start + 5, end - 5), **copying))
    if total <= INLINE_BATCHES:
        def report(done: int) -> None:
            context.set_custom_status(status(stage, scaled(done, total, start + 5, end - 5), batchesDone=done,
                                             **copying))

        failed = yield from run_waves(context, prefix, list(range(total)), report)
    else:
        failed = yield from run_children(context, prefix, total, status(stage, start + 5, **copying),
                                         (start + 5, end - 5))
    context.set_custom_status(status(stage, end - 5, step="finishing", batches=total))
    finished = yield context.call_activity_with_retry("finish_job", RETRY, {"prefix": prefix, "failed": failed})
    finished = unpack(finished)
    # The plan and batch state go whether the finish worked or not: nothing reads them again.
    yield context.call_activity_with_retry("cleanup_claims", RETRY, {"prefix": f"{prefix}/"})
    if "error" in finished:
        return {"error": finished["error"]}
    context.set_custom_status(status(stage, end, step="done"))
    return {"outcome": finished}


def run_children(context: df.DurableOrchestrationContext, prefix: str, total: int, copying: dict[str, Any],
                 span: tuple[float, float]) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Batches in ``copy_batches`` sub-orchestrations of :data:`INLINE_BATCHES` each. Each child reports
    its own progress every wave; this status names them, for readers to combine
    (:mod:`ferry.jobs.progress`)."""
    slices = [(first, min(INLINE_BATCHES, total - first)) for first in range(0, total, INLINE_BATCHES)]
    ids = f"{context.instance_id}:batches:"
    context.set_custom_status({**copying, "children": children_field(ids, len(slices), total, span)})
    children = [context.call_sub_orchestrator("copy_batches", {"prefix": prefix, "first": first, "count": count},
                                              f"{ids}{n}")
                for n, (first, count) in enumerate(slices)]
    failed: list[dict[str, Any]] = []
    for part in (yield context.task_all(children)):
        failed += part
    return failed


@bp.orchestration_trigger(context_name="context")
def copy_batches(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Input ``{"prefix", "first", "count"}``: batches ``first .. first+count-1``; output the failed
    ones. Its custom status says how many of its batches are done, after every wave."""
    spec = context.get_input()
    first, count = int(spec["first"]), int(spec["count"])
    context.set_custom_status(child_status(0, count))

    def report(done: int) -> None:
        context.set_custom_status(child_status(done, count))

    return (yield from run_waves(context, spec["prefix"], list(range(first, first + count)), report))
