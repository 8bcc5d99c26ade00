"""The work behind a task: running an activity or a sub-orchestration, and records of that work.

Contract:

- ``call_activity`` runs one activity the way the Python worker does: the input is decoded and
  the result encoded by the SDK's ``ActivityTriggerConverter`` (so an output that is not JSON
  fails the activity), and a failure becomes an ``Outcome`` whose ``reason`` is what the
  extension writes (``Activity function 'X' failed: <Type>: <message>``) and whose ``details`` is
  the traceback. It never raises for the activity's own error.
- ``start_suborchestration`` runs a child orchestration on a thread of its own through the
  driver it is given, and resolves to the ``Outcome`` the parent's history records: its output,
  or ``Orchestrator function 'X' failed: <message>`` with the child's traceback. An unknown
  orchestrator or a child id still running fails the task; a runner error in the child is the
  future's exception.
- ``Work`` is a task the runner started: an activity or sub-orchestration (a future of an
  ``Outcome``) or a timer (a fire time).

Who may import it: ``runner.scheduler`` and ``runner.replay``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from runner.functions import FunctionRegistry, OrchestratorFunction
from runner.records import COMPLETED, InstanceAlreadyExists, InstanceRecord, OrchestrationResult

log = logging.getLogger(__name__)

NewInstance = Callable[[], tuple[InstanceRecord, OrchestratorFunction, "type | None"]]
Drive = Callable[[InstanceRecord, OrchestratorFunction, "type | None"], OrchestrationResult]


@dataclass
class Work:
    """A task the runner started: activity / sub-orchestration (a future) or timer (a fire time)."""

    kind: str  # "activity" | "suborchestration" | "timer"
    name: str
    future: Future[Any] | None = None
    fire_at: datetime | None = None


@dataclass
class Outcome:
    """How an activity or sub-orchestration ended, as the completion event will say it."""

    ok: bool
    result_json: str | None = None
    reason: str = ""
    details: str = ""
    finished: float = field(default_factory=time.monotonic)


def call_activity(registry: FunctionRegistry, name: str, input_json: str | None) -> Outcome:
    activity = registry.activities.get(name)
    if activity is None:
        return Outcome(False, reason=f"The function '{name}' doesn't exist, is disabled, or is not an activity "
                       f"function. Known activities: {sorted(registry.activities)}")
    try:
        value = ActivityTriggerConverter.decode(meta.Datum(input_json, "json"), trigger_metadata=None)
        result = activity(value)
        encoded = ActivityTriggerConverter.encode(result, expected_type=None)
    except Exception as exc:
        log.info("activity %s failed: %s", name, exc)
        return Outcome(False, reason=f"Activity function '{name}' failed: {type(exc).__name__}: {exc}",
                       details="".join(traceback.format_exception(exc)).rstrip())
    return Outcome(True, result_json=encoded.value)


def finish_time(future: Future[Any]) -> float:
    """When the work behind ``future`` finished (0 for a runner error), to order completions."""
    if future.exception() is not None:
        return 0.0
    outcome = future.result()
    return outcome.finished if isinstance(outcome, Outcome) else 0.0


def start_suborchestration(name: str, instance_id: str, new_instance: NewInstance, drive: Drive) -> Future[Outcome]:
    """Create the child with ``new_instance`` and run it with ``drive`` on a thread of its own."""
    future: Future[Outcome] = Future()

    def target() -> None:
        try:
            record, fn, input_type = new_instance()
        except (KeyError, InstanceAlreadyExists) as exc:
            future.set_result(Outcome(False, reason=str(exc).strip("\"'")))
            return
        try:
            result = drive(record, fn, input_type)
        except BaseException as exc:
            record.failure = exc
            record.done.set()
            future.set_exception(exc)
            return
        if result.status == COMPLETED:
            future.set_result(Outcome(True, result_json=json.dumps(result.output)))
        else:
            future.set_result(Outcome(False, reason=f"Orchestrator function '{name}' failed: {result.error}",
                                      details=record.error_details))

    threading.Thread(target=target, name=f"orchestration-{instance_id}", daemon=True).start()
    return future
