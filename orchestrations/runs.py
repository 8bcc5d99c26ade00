"""Run orchestrators: ``pipeline_run`` (an ACR PipelineRun: export or import), ``image_import``
(ACR's importImage), ``blob_copy`` (between storage accounts) and ``transfer`` (export → copy →
import chained, for connected clouds).

``pipeline_run`` input: ``{"runName", "kind": "export"|"import", "job": JobSpec JSON}``, built and
validated by the face that starts it (:mod:`ferry.transfer.build`). ``image_import`` input:
``{"job": JobSpec JSON}``, or ``{"handoff": Handoff JSON}`` when the target ACR's own importImage
does the work (activity ``acr_import_image``). Both return the run result of
:mod:`ferry.transfer.response`.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from ferry.jobs.phases import JobOutcome
from ferry.transfer.build import one_time_credentials
from ferry.transfer.handoff import Handoff
from ferry.transfer.response import handoff_result, run_result
from orchestrations.copy_job import RETRY, copy_job_steps
from orchestrations.progress import status

bp = df.Blueprint()

#: How often a server-side blob copy is polled, and for how long at most.
POLL_SECONDS = 5
MAX_POLLS = 720


def _job_run(context: df.DurableOrchestrationContext, job: dict[str, Any],
             stage: str) -> Generator[Any, Any, dict[str, Any]]:
    # Inline, not a sub-orchestration: the run's own custom status then carries the copy's progress,
    # which GET pipelineRuns reports as progress.percentage.
    result = yield from copy_job_steps(context, {"job": job, "prefix": f"runs/{context.instance_id}",
                                                 "stage": stage, "progress": [0, 100]})
    if "error" in result:
        return run_result(None, result["error"])
    return run_result(JobOutcome.from_json(result["outcome"]))


@bp.orchestration_trigger(context_name="context")
def pipeline_run(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    spec = context.get_input()
    kind = spec.get("kind")
    if kind not in ("export", "import"):
        return run_result(None, f"pipeline run kind {kind!r} is not export or import")
    context.set_custom_status(status(kind, 0, step="starting", run=spec.get("runName")))
    output = yield from _job_run(context, spec["job"], kind)
    context.set_custom_status(status(kind, 100, step="done", run=spec.get("runName")))
    return output


@bp.orchestration_trigger(context_name="context")
def image_import(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    spec = context.get_input()
    context.set_custom_status(status("importImage", 0, step="starting"))
    if "handoff" in spec:  # the target is an ACR that imports the image itself
        context.set_custom_status(status("importImage", 0, step="ACR importImage"))
        done = yield context.call_activity_with_retry("acr_import_image", RETRY, spec["handoff"])
        output = (run_result(None, done["error"]) if "error" in done
                  else handoff_result(Handoff.from_json(spec["handoff"]), done["imported"]))
    else:
        output = yield from _job_run(context, spec["job"], "importImage")
    # The caller's one-time credentials go with the run that used them.
    names = one_time_credentials(spec)
    if names:
        yield context.call_activity_with_retry("cleanup_claims", RETRY, {"names": names})
    context.set_custom_status(status("importImage", 100, step="done"))
    return output


@bp.orchestration_trigger(context_name="context")
def blob_copy(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input ``{"source", "target", "source_storage", "target_storage", "overwrite", "mode"}``: a
    server-side copy polled on durable timers, falling back to a relay copy when the service cannot
    do it (or when ``mode`` is ``relay``). Output ``{"mode", "status", "size"}`` or ``{"error"}``."""
    spec = context.get_input()
    if spec.get("mode") != "relay":
        started = yield context.call_activity_with_retry("start_blob_copy", RETRY, spec)
        if "error" not in started:
            for poll in range(MAX_POLLS):
                state = yield context.call_activity_with_retry("blob_copy_status", RETRY, spec)
                if "error" in state:
                    return {"error": state["error"]}
                context.set_custom_status(status("copy", 100 * state["done"] / max(state["total"], 1),
                                                 step="server copy", polls=poll))
                if state["status"] == "success":
                    return {"mode": "server", "status": "success", "size": state["total"]}
                if state["status"] in ("failed", "aborted"):
                    break
                yield context.create_timer(context.current_utc_datetime + timedelta(seconds=POLL_SECONDS))
        elif started.get("errorType") in ("ConflictError", "UsageError"):
            return {"error": started["error"]}
    context.set_custom_status(status("copy", 0, step="relay copy"))
    relayed = yield context.call_activity_with_retry("relay_blob_copy", RETRY, {**spec, "overwrite": True}
                                                     if spec.get("mode") != "relay" else spec)
    if "error" in relayed:
        return {"error": relayed["error"]}
    context.set_custom_status(status("copy", 100, step="done"))
    return {"mode": "relay", "status": "success", "size": relayed.get("size")}


@bp.orchestration_trigger(context_name="context")
def transfer(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input ``{"export": pipeline_run input, "copy": blob_copy input, "import": pipeline_run input}``:
    the three steps chained as sub-orchestrations; stops at the first that fails."""
    spec = context.get_input()
    steps: dict[str, Any] = {}
    exported = yield context.call_sub_orchestrator("pipeline_run", spec["export"], f"{context.instance_id}:export")
    steps["export"] = exported
    if exported["status"] != "Succeeded":
        return {**exported, "steps": steps}
    context.set_custom_status(status("transfer", 40, step="copy"))
    copied = yield context.call_sub_orchestrator("blob_copy", spec["copy"], f"{context.instance_id}:blobcopy")
    steps["copy"] = copied
    if "error" in copied:
        return {**run_result(None, f"copy-blob: {copied['error']}"), "steps": steps}
    context.set_custom_status(status("transfer", 60, step="import"))
    imported = yield context.call_sub_orchestrator("pipeline_run", spec["import"], f"{context.instance_id}:import")
    steps["import"] = imported
    context.set_custom_status(status("transfer", 100, step="done"))
    return {**imported, "catalogDigest": exported.get("catalogDigest"), "steps": steps}
