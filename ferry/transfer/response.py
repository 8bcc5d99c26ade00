"""A PipelineRun's ``properties.response``, shaped once.

Two halves, both pure:

* :func:`run_result` / :func:`handoff_result`: what a run orchestration returns when it ends
  (``status``, ``importedArtifacts``, ``catalogDigest``, ``pipelineRunErrorMessage``, ``artifacts``).
* :func:`run_response`: what ``GET pipelineRuns/{name}`` answers, from that result, the
  orchestration's state while it runs, and the blob location stored with the run at PUT.

Every message passes :func:`ferry.redact.redact`. May be imported by the faces and orchestrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ferry.jobs.phases import JobOutcome
from ferry.redact import redact
from ferry.transfer.handoff import Handoff
from ferry.transfer.models import BLOB_TYPE, ExportPipeline, ImportPipeline, PipelineRun

ACTIVE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})


def run_result(outcome: JobOutcome | None, error: str | None = None) -> dict[str, Any]:
    """The orchestration's output: from a finished job, or from an ``error`` that ended the run."""
    if outcome is None:
        return {"status": "Failed", "importedArtifacts": [], "catalogDigest": None,
                "pipelineRunErrorMessage": redact(error or "the run failed"), "artifacts": []}
    artifacts = outcome.to_json()["report"]["artifacts"]
    failed = [a for a in artifacts if a.get("status") != "copied"]
    message = "; ".join(f"{a['source']}: {a.get('error')}" for a in failed) or None
    return {"status": "Succeeded" if outcome.ok else "Failed",
            "importedArtifacts": [a["target"] for a in artifacts if a.get("status") == "copied"],
            "catalogDigest": outcome.catalog_digest,
            "pipelineRunErrorMessage": redact(message) if message else None,
            "artifacts": artifacts, "deletedSource": outcome.deleted_source, "keptSource": outcome.kept_source}


def handoff_result(handoff: Handoff, imported: list[str]) -> dict[str, Any]:
    """The output of an importImage the target ACR did itself."""
    artifacts = [{"source": handoff.source_label, "target": target, "status": "copied"} for target in imported]
    return {"status": "Succeeded", "importedArtifacts": list(imported), "catalogDigest": None,
            "pipelineRunErrorMessage": None, "artifacts": artifacts}


def run_location(pipeline: ExportPipeline | ImportPipeline, run: PipelineRun) -> dict[str, Any]:
    """``{"target": {...}}`` for an export or ``{"source": {...}}`` for an import: the archive blob."""
    side, storage, name = (("target", pipeline.target, run.target_name) if isinstance(pipeline, ExportPipeline)
                           else ("source", pipeline.source, run.source_name))
    location: dict[str, Any] = {"type": BLOB_TYPE, "uri": f"{storage.uri.rstrip('/')}/{name}"}
    if storage.key_vault_uri:
        location["keyVaultUri"] = storage.key_vault_uri
    return {side: location}


@dataclass(frozen=True)
class RunState:
    """What the Durable client says of a run's orchestration (None fields: not known)."""

    runtime_status: str | None = None
    custom_status: Any = None
    output: Any = None
    created: datetime | None = None
    updated: datetime | None = None

    @property
    def active(self) -> bool:
        return self.runtime_status in ACTIVE


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _percentage(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) else str(value)


def run_response(state: RunState | None, location: dict[str, Any] | None,
                 start_error: str | None = None) -> dict[str, Any]:
    """ACR's ``properties.response`` for a run in ``state``, stored with ``location``."""
    response: dict[str, Any] = {"status": "Unknown", "importedArtifacts": [], "catalogDigest": None,
                                "pipelineRunErrorMessage": None, "artifacts": []}
    runtime = state.runtime_status if state else None
    custom = state.custom_status if state else None
    percentage = custom.get("percentage") if isinstance(custom, dict) else None
    if start_error:
        response.update(status="Failed", pipelineRunErrorMessage=redact(start_error))
    elif state is not None and state.active:
        response["status"] = "Running"
    elif runtime == "Completed":
        result = state.output if state is not None and isinstance(state.output, dict) else {}
        response.update({key: result.get(key) for key in ("catalogDigest", "pipelineRunErrorMessage")})
        response["status"] = result.get("status") or "Succeeded"
        response["importedArtifacts"] = list(result.get("importedArtifacts") or [])
        response["artifacts"] = list(result.get("artifacts") or [])
        percentage = 100
    elif runtime == "Failed":
        failure = str((state.output if state else None) or "the orchestration failed").strip()
        response.update(status="Failed", pipelineRunErrorMessage=failure.splitlines()[0] if failure else None)
    elif runtime in ("Terminated", "Canceled"):
        response.update(status="Canceled", pipelineRunErrorMessage="the run was canceled")
    if response["pipelineRunErrorMessage"]:
        response["pipelineRunErrorMessage"] = redact(str(response["pipelineRunErrorMessage"]))
    if percentage is not None:
        response["progress"] = {"percentage": _percentage(percentage)}
    if state is not None:
        response["startTime"] = _iso(state.created)
        if not state.active:
            response["finishTime"] = _iso(state.updated)
    response.update(location or {})
    return response
