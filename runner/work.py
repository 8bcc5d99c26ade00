"""The work behind a task: running an activity, and the records of work started and finished.

Contract:

- ``call_activity`` runs one activity the way the Python worker does: the input is decoded and
  the result encoded by the SDK's ``ActivityTriggerConverter`` (so an output that is not JSON
  fails the activity), and a failure becomes an ``Outcome`` whose ``reason`` is what the
  extension writes (``Activity function 'X' failed: <Type>: <message>``) and whose ``details`` is
  the traceback. It never raises for the activity's own error.
- ``Work`` is a task the runner started: an activity or sub-orchestration (a future of an
  ``Outcome``) or a timer (a fire time).

Who may import it: ``runner.scheduler`` and ``runner.replay``.
"""

from __future__ import annotations

import logging
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from runner.functions import FunctionRegistry

log = logging.getLogger(__name__)


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
