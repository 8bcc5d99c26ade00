"""Run Durable Functions orchestrations without the Functions host (tests, ``ferry run``, the demo).

Drives the real azure-functions-durable replay engine (pinned exactly in requirements.txt) the way
the host's out-of-process protocol does. Lives outside ``ferry/`` because it imports
``azure.durable_functions`` and ``azure.functions``.

Import the public names from here (or from ``runner.replay``, ``runner.client``,
``runner.functions``). The modules, each with its contract and importers in its docstring:

- ``runner.replay``: ``LocalOrchestrationRunner``, the driver and its public API (runs, starts,
  waits, terminates, raises external events, moves the clock); re-exports the public names of
  ``runner.records`` and ``runner.history``.
- ``runner.client``: ``LocalDurableClient``, the SDK's client backed by a runner; client functions.
- ``runner.functions``: finding orchestrators, activities and client functions in apps.
- ``runner.protocol``: one call into the SDK (context JSON in, state/context/error out).
- ``runner.actions``: reading the SDK's open tasks and actions; determinism and early-event checks.
- ``runner.scheduler``: one generation's work in flight (start tasks, wait, events to append).
- ``runner.work``: running an activity or a sub-orchestration; records of work started and finished.
- ``runner.history``: history event types, builders and timestamps.
- ``runner.instances``: the thread-safe table of instances and their event inboxes.
- ``runner.records``: ``InstanceRecord``, ``OrchestrationResult``, statuses, runner errors.
- ``runner.clock``: the orchestration clock.
"""

from runner.client import LocalDurableClient, acall_client_function, call_client_function
from runner.functions import FunctionRegistry, resolve_activity, resolve_client_function, resolve_orchestrator
from runner.replay import (
    EventBufferingWarning,
    InstanceAlreadyExists,
    InstanceNotRunning,
    LocalOrchestrationRunner,
    OrchestrationResult,
    UnsupportedDurableFeature,
)

__all__ = [
    "EventBufferingWarning",
    "FunctionRegistry",
    "InstanceAlreadyExists",
    "InstanceNotRunning",
    "LocalDurableClient",
    "LocalOrchestrationRunner",
    "OrchestrationResult",
    "UnsupportedDurableFeature",
    "acall_client_function",
    "call_client_function",
    "resolve_activity",
    "resolve_client_function",
    "resolve_orchestrator",
]
