"""Read what an orchestrator asked for: the SDK's open tasks and actions after a replay.

Contract: pure functions over a ``DurableOrchestrationContext`` after ``handle`` returned. They
name each open task's kind (``"activity"``, ``"suborchestration"``, ``"timer"``), function name
and action; list the task-creating actions in yield order; find the ``continue_as_new`` input;
and compare a replay's schedule with the history's (non-determinism). They change nothing.
An action the runner does not drive raises ``UnsupportedDurableFeature``.

Facts they rely on (azure-functions-durable 1.7.0):

- Activities, timers, sub-orchestrations and the hidden retry tasks draw their ids from one
  counter in yield order; ``context.open_tasks`` maps id -> task (or a list of tasks).
- Actions come back as ``[[a, b, ...]]`` (one flat list, ``task_all``/``task_any`` as compound
  WhenAll/WhenAny actions) for replay schemas V2/V3 and as one list per yield for V1; these
  functions flatten both shapes.
- ``call_*_with_retry`` is a RetryAbleTask: after a failure the SDK opens a timer task (NoOpAction
  "-WithRetry timer") and, when it fires, a new task (NoOpAction "rescheduled task") that the host
  runs as the parent's action.

Who may import it: ``runner.replay`` and ``runner.scheduler``. This module and
``runner.protocol`` are the only ones that touch SDK task and action internals.
"""

from __future__ import annotations

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
        raise UnsupportedDurableFeature(
            f"wait_for_external_event({action.external_event_name!r}) is not supported by the local runner:"
            " raise_event has no local equivalent yet"
        )
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
    if context.deferred_tasks:
        ids = ", ".join(sorted(map(str, context.deferred_tasks)))
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
