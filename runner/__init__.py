"""Run Durable Functions orchestrations without the Functions host (tests, ``ferry run``, the demo).

Drives the real azure-functions-durable replay engine (pinned exactly in requirements.txt) the way
the host's out-of-process protocol does. Lives outside ``ferry/`` because it imports
``azure.durable_functions`` and ``azure.functions``.
"""

from runner.client import LocalDurableClient, acall_client_function, call_client_function
from runner.functions import FunctionRegistry, resolve_activity, resolve_client_function, resolve_orchestrator
from runner.replay import (
    InstanceAlreadyExists,
    LocalOrchestrationRunner,
    OrchestrationResult,
    UnsupportedDurableFeature,
)

__all__ = [
    "FunctionRegistry",
    "InstanceAlreadyExists",
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
