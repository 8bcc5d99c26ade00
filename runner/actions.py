"""Read what an orchestrator asked for: the SDK's open tasks and actions after a replay.

Contract: pure functions over a ``DurableOrchestrationContext`` after ``handle`` returned. They
name each open task's kind (``"activity"``, ``"suborchestration"``, ``"timer"``, ``"event"``),
name (function or event name) and action; list the task-creating actions in yield order; find the
``continue_as_new`` input; compare a replay's schedule with the history's (non-determinism); and
spot the SDK's early-event mishandling. They change nothing. An action the runner does not drive
raises ``UnsupportedDurableFeature``.

Facts they rely on (azure-functions-durable 1.7.0):

- Activities, timers, sub-orchestrations and the hidden retry tasks draw their ids from one
  counter in yield order; ``context.open_tasks`` maps id -> task (or a list of tasks).
- Actions come back as ``[[a, b, ...]]`` (one flat list, ``task_all``/``task_any`` as compound
  WhenAll/WhenAny actions) for replay schemas V2/V3 and as one list per yield for V1; these
  functions flatten both shapes.
- ``call_*_with_retry`` is a RetryAbleTask: after a failure the SDK opens a timer task (NoOpAction
  "-WithRetry timer") and, when it fires, a new task (NoOpAction "rescheduled task") that the host
  runs as the parent's action.
- ``wait_for_external_event(name)`` opens a task whose id is the *name* (no counter id) and whose
  action is a WaitForExternalEventAction; the host writes no history event for it. An EventRaised
  (15) completes the open wait of its ``Name``; with none open, the SDK files it under
  ``context.deferred_tasks[name]`` -- one per name, a later one replacing it, never removed -- and
  hands it to each later wait of that name (Azure/azure-functions-durable-python#507).

Who may import it: ``runner.replay`` and ``runner.scheduler``. This module and
``runner.protocol`` are the only ones that touch SDK task and action internals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction
from azure.durable_functions.models.actions.CallActivityWithRetryAction import CallActivityWithRetryAction
from azure.durable_functions.models.actions.CallSubOrchestratorAction import CallSubOrchestratorAction
from azure.durable_functions.models.actions.CallSubOrchestratorWithRetryAction import (
    CallSubOrchestratorWithRetryAction,
)
from azure.durable_functions.models.actions.CompoundAction import CompoundAction
from azure.durable_functions.models.actions.ContinueAsNewAction import ContinueAsNewAction
from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.actions.WaitForExternalEventAction import WaitForExternalEventAction

from runner.records import UnsupportedDurableFeature


def open_tasks(context: Any) -> list[Any]:
    """Every atomic task still open on the context (lists under one key unpacked)."""
    tasks: list[Any] = []
    for value in list(context.open_tasks.values()):
        tasks.extend(value if isinstance(value, list) else [value])
    return tasks


def is_hidden_retry_task(task: Any) -> bool:
    """A task the SDK opened for ``*_with_retry`` (a NoOpAction), not from an action of its own."""
    return isinstance(task._get_action(), NoOpAction)


def describe(task: Any) -> tuple[str, str, Any]:
    """(kind, function name, action to run) of an open atomic task.

    A ``-WithRetry`` timer comes back as ``("timer", "", None)``: its fire time is the caller's to
    compute from the retry options.
    """
    action = task._get_action()
    if isinstance(action, NoOpAction):
        parent = task.parent
        if "timer" in (action.metadata or ""):
            return "timer", "", None
        inner = parent.actions[0] if isinstance(parent.actions, list) else parent.actions
        action = inner
    if isinstance(action, CallActivityAction | CallActivityWithRetryAction):
        return "activity", action.function_name, action
    if isinstance(action, CallSubOrchestratorAction | CallSubOrchestratorWithRetryAction):
        return "suborchestration", action.function_name, action
    if isinstance(action, CreateTimerAction):
        return "timer", "", action
    if isinstance(action, WaitForExternalEventAction):
        return "event", action.external_event_name, action
    raise UnsupportedDurableFeature(f"{type(action).__name__} is not supported by the local runner")


def flatten(items: Any) -> Iterable[Any]:
    """The atomic actions of an actions payload (V1 nested lists and compound actions unpacked)."""
    for item in items:
        if isinstance(item, list):
            yield from flatten(item)
        elif isinstance(item, CompoundAction):
            yield from flatten(item.compound_tasks)
        else:
            yield item


def scheduling_actions(actions: Any) -> Iterable[tuple[str, str]]:
    """(kind, name) of the actions that become tasks with ids, in order (WhenAll/WhenAny unpacked)."""
    for action in flatten(actions):
        if isinstance(action, CallActivityAction | CallActivityWithRetryAction):
            yield "activity", action.function_name
        elif isinstance(action, CallSubOrchestratorAction | CallSubOrchestratorWithRetryAction):
            yield "suborchestration", action.function_name
        elif isinstance(action, CreateTimerAction):
            yield "timer", ""


def continue_as_new_input(context: Any) -> str:
    for action in flatten(context._actions):
        if isinstance(action, ContinueAsNewAction):
            return str(action.input_)
    raise RuntimeError("continue_as_new was called but no ContinueAsNew action was returned")


def check_determinism(context: Any, timeline: list[tuple[str, str]]) -> str | None:
    """Compare what the replay scheduled with what the history says was scheduled, in order.

    ``timeline`` lists the (kind, name) of every task the runner started from an action (not the
    hidden retry tasks), in task-id order; the SDK's actions list the same tasks in yield order.
    Returns the error message, or None when they agree.
    """
    unscheduled = [key for key in context.deferred_tasks if not isinstance(key, str)]  # str: an early event
    if unscheduled:
        ids = ", ".join(sorted(map(str, unscheduled)))
        return (f"Non-deterministic workflow detected: the history completes task(s) {ids} that the "
                "orchestrator did not schedule on replay")
    replayed = list(scheduling_actions(context._actions))
    for index, expected in enumerate(timeline):
        got = replayed[index] if index < len(replayed) else None
        if got != expected:
            now = f"{got[0]} {got[1]!r}" if got else "nothing"
            return (f"Non-deterministic workflow detected: step {index} of the history is {expected[0]} "
                    f"{expected[1]!r} but the orchestrator now schedules {now}")
    return None


def open_waits(context: Any) -> Counter[str]:
    """Event name -> number of ``wait_for_external_event`` tasks still open on the context."""
    return Counter(name for kind, name, _ in map(describe, open_tasks(context)) if kind == "event")


def event_buffer_problems(context: Any, raised: Counter[str]) -> dict[tuple[str, str], str]:
    """(event name, ``"again"`` | ``"replaced"``) -> what the SDK got wrong with early events, after a replay.

    ``raised`` counts the EventRaised events of each name in the history just replayed. A wait
    that completed consumed one event; more completed waits than events means the SDK handed an
    early event out again, and two or more events left unconsumed means one replaced the other.
    """
    yielded = Counter(a.external_event_name for a in flatten(context._actions)
                      if isinstance(a, WaitForExternalEventAction))
    completed = yielded - open_waits(context)
    problems: dict[tuple[str, str], str] = {}
    for name in sorted(set(raised) | set(completed)):
        if completed[name] > raised[name]:
            problems[name, "again"] = (f"{completed[name]} wait_for_external_event({name!r}) completed but only "
                              f"{raised[name]} such event(s) were raised: the SDK handed an early event out again")
        elif raised[name] - completed[name] >= 2:
            early = raised[name] - completed[name]
            problems[name, "replaced"] = (f"{early} events {name!r} arrived before a wait for them: "
                                          "the SDK keeps only the last one")
    return problems
