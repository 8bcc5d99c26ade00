"""One call into the SDK's replay engine, in the host's out-of-process protocol.

Contract: ``replay_once`` builds the context JSON the Functions extension would send for the
given history, calls ``Orchestrator(fn).handle(DurableOrchestrationContext.from_json(...))`` and
returns what came back -- the state JSON, the context (whose ``open_tasks``, ``_actions`` and
``custom_status`` the caller reads) and, when the orchestrator raised, its message and traceback.
It keeps no state and never raises for an orchestrator's error. Facts it relies on (SDK 1.7.0):

- The context JSON is ``{"history", "input" (a JSON *string*), "instanceId", "isReplaying",
  "parentInstanceId", "upperSchemaVersion": 1, "upperSchemaVersionNew": 2,
  "longRunningTimerIntervalDuration", "maximumShortTimerDuration"}``; events before the last
  ``OrchestratorStarted`` go with ``IsPlayed`` true.
- Timers longer than ``maximumShortTimerDuration`` (6 days, as on Azure Storage) are split by the
  SDK into several timers of at most ``longRunningTimerIntervalDuration`` (3 days).
- An exception escaping the orchestrator makes ``handle`` raise ``Exception(f"{exc}\\n\\n
  $OutOfProcData$:{state json}")`` (from the original exception).

Who may import it: ``runner.replay`` only.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.durable_functions import DurableOrchestrationContext, Orchestrator
from azure.durable_functions.models.utils.df_serialization import df_dumps

from runner.functions import OrchestratorFunction
from runner.history import ORCHESTRATOR_STARTED, timespan

OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"


@dataclass(frozen=True)
class ProtocolOptions:
    """What the extension advertises to the worker: replay schema and long-timer limits."""

    schema_version: int = 2  # 0 (V1), 1 (V2) or 2 (V3)
    max_short_timer: timedelta | None = timedelta(days=6)
    long_timer_interval: timedelta | None = timedelta(days=3)


@dataclass
class ReplayOutcome:
    state: dict[str, Any]
    context: Any  # the DurableOrchestrationContext after the call
    error: str | None = None  # the orchestrator's error message
    error_details: str = ""  # its traceback


def context_payload(
    options: ProtocolOptions, history: list[dict[str, Any]], input_json: str | None, instance_id: str,
    parent_instance_id: str | None,
) -> dict[str, Any]:
    """The context JSON the extension sends for ``history`` (as a dict)."""
    last_start = max(i for i, e in enumerate(history) if e["EventType"] == ORCHESTRATOR_STARTED)
    payload: dict[str, Any] = {
        "history": [dict(e, IsPlayed=i < last_start) for i, e in enumerate(history)],
        "input": input_json,
        "instanceId": instance_id,
        "isReplaying": False,
        "parentInstanceId": parent_instance_id,
        "upperSchemaVersion": min(options.schema_version, 1),
    }
    if options.schema_version >= 2:
        payload["upperSchemaVersionNew"] = options.schema_version
    if options.max_short_timer is not None and options.long_timer_interval is not None:
        payload["maximumShortTimerDuration"] = timespan(options.max_short_timer)
        payload["longRunningTimerIntervalDuration"] = timespan(options.long_timer_interval)
    return payload


def replay_once(fn: OrchestratorFunction, input_type: type | None, payload: dict[str, Any]) -> ReplayOutcome:
    """One call into the SDK with the context JSON ``payload``."""
    context = DurableOrchestrationContext.from_json(json.dumps(payload))
    context._input_expected_type = input_type  # as Orchestrator.create's handle does
    try:
        state = json.loads(Orchestrator(fn).handle(context))
    except Exception as exc:
        message, label, state_json = str(exc).partition(OUT_OF_PROC_LABEL)
        state = json.loads(state_json) if label else {"isDone": False, "actions": [], "error": message}
        cause = exc.__cause__ if label and exc.__cause__ is not None else exc
        details = "".join(traceback.format_exception(cause)).rstrip()
        return ReplayOutcome(state, context, message, details)
    return ReplayOutcome(state, context)


def custom_status_json(context: Any) -> Any:
    """The context's custom status as the host stores it and ``get_status`` returns it."""
    status = context.custom_status
    return None if status is None else json.loads(df_dumps(status))
