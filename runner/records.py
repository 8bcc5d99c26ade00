"""What the local runner knows about an orchestration instance, and the errors it raises.

Contract:

- ``InstanceRecord`` is the live state of one instance. The driver thread writes it (through
  ``LocalOrchestrationRunner._touch``, under the runner's lock); the client and tests only read
  it, except for the fields the runner's public methods set on their behalf.
- ``OrchestrationResult`` is how an instance ended; it never changes once built.
- Runtime status names are the values of the SDK's ``OrchestrationRuntimeStatus``.
- The exceptions are the runner's own errors, distinct from an orchestrator's failure (which is
  a ``Failed`` result, not an exception).

Who may import it: any module of ``runner/``. Outside ``runner/``, import the public names from
``runner`` (or ``runner.replay``), which re-export them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Runtime status names (azure.durable_functions.models.OrchestrationRuntimeStatus values)
PENDING, RUNNING, COMPLETED, FAILED, TERMINATED = "Pending", "Running", "Completed", "Failed", "Terminated"
ACTIVE_STATUSES = frozenset({PENDING, RUNNING, "ContinuedAsNew", "Suspended"})


class UnsupportedDurableFeature(NotImplementedError):
    """The orchestrator used an API the local runner does not drive (entities, durable HTTP)."""


class InstanceNotRunning(Exception):
    """``raise_event`` to an instance that has ended (the host answers 410 Gone)."""


class EventBufferingWarning(RuntimeWarning):
    """The SDK mishandles external events raised before the orchestration waits for them.

    azure-functions-durable 1.7.0 keeps one early event per name (a second one replaces the first)
    and hands that same event to every later ``wait_for_external_event`` of the name
    (Azure/azure-functions-durable-python#507). The runner feeds the SDK what the host would, so
    the orchestrator sees this too; the warning says when it happened.
    """


class InstanceAlreadyExists(Exception):
    """``start`` with the id of an instance that is still Pending/Running (the host's default
    ``OverridableExistingInstanceStates.NonRunningStates`` refuses it the same way)."""


@dataclass
class OrchestrationResult:
    """How one orchestration instance ended (after every ``continue_as_new`` generation)."""

    instance_id: str
    name: str
    status: str  # "Completed" | "Failed" | "Terminated"
    output: Any
    custom_status: Any
    error: str | None
    input: Any
    history_length: int  # events in the last generation's history
    generations: int  # 1 + number of continue_as_new restarts
    replays: int  # calls into Orchestrator.handle, all generations
    activity_calls: int
    created_time: datetime
    finished_time: datetime  # orchestration clock (moves with fired timers)
    duration_s: float  # wall clock
    history: list[dict[str, Any]] = field(repr=False, default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED


@dataclass
class InstanceRecord:
    """Live state of one instance; the client's ``get_status`` reads it while the driver writes it."""

    instance_id: str
    name: str
    input_json: str | None
    parent_instance_id: str | None = None
    runtime_status: str = PENDING
    custom_status: Any = None
    output: Any = None
    error: str | None = None
    error_details: str = ""  # traceback of the orchestrator's exception
    created_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_updated_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)
    status_history: list[Any] = field(default_factory=list)
    terminate_reason: str | None = None
    result: OrchestrationResult | None = None
    failure: BaseException | None = None  # a runner error (not an orchestrator error) raised in the background
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    # External events: raised, not yet in the history, as (name, input JSON); guarded by the store's lock.
    inbox: list[tuple[str, str]] = field(default_factory=list, repr=False)
    waiting_for: frozenset[str] = frozenset()  # names of the external events the orchestrator waits for now
    wake: threading.Event = field(default_factory=threading.Event, repr=False)  # set by raise_event etc.

    @property
    def input(self) -> Any:
        return None if self.input_json is None else json.loads(self.input_json)
