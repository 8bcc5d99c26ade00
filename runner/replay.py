"""Run Durable orchestrations without the Functions host, on the SDK's own replay engine.

``LocalOrchestrationRunner`` speaks the host's out-of-process protocol to
``azure.durable_functions.Orchestrator(fn).handle(DurableOrchestrationContext.from_json(...))``:
it keeps the orchestration's history, hands the whole of it to the SDK on every turn, reads the
state the SDK returns and the tasks still open on the context, does the work (activities in a
bounded thread pool, sub-orchestrations recursively, timers on a clock it controls), appends the
events the host would append, and calls again until the SDK says ``isDone``.

One turn ("episode") of history, as the host writes it::

    OrchestratorStarted(12)  <EventRaised(15)...>
    <completions: TaskCompleted(5)/TaskFailed(6)/TimerFired(11)/Sub...(8,9)>
    <new work: TaskScheduled(4)/TimerCreated(10)/SubOrchestrationInstanceCreated(7)>
    OrchestratorCompleted(13)

The first episode carries ExecutionStarted(0) right after OrchestratorStarted (the SDK requires
exactly ``history[0]`` OrchestratorStarted and ``history[1]`` ExecutionStarted, with a ``Version``).

Facts taken from the azure-functions-durable 1.7.0 source (pinned in requirements.txt):

- The context JSON, long-timer limits and the error convention of ``handle``: ``runner.protocol``.
- Task ids, action shapes and the hidden retry tasks: ``runner.actions``; retry timers:
  ``runner.scheduler``; failure reasons as the extension writes them: ``runner.work``.
- Failures reach the generator as ``Exception(f"{Reason} \\n {Details}")``; a failed
  sub-orchestration's Reason is ``Orchestrator function 'X' failed: <message>``.

Time: by default timers fire as soon as nothing else is running, and the orchestration clock (the
``OrchestratorStarted`` timestamps behind ``current_utc_datetime``) jumps to the timer's fire time,
so a 5-minute durable timer costs nothing. ``real_time=True`` sleeps instead. An orchestration
that waits for an external event as well gives ``raise_event`` ``event_grace`` wall seconds (2 by
default) before its timer fires early; ``event_grace=None`` never fires it early, so the event
always wins unless the clock reaches the timer (``advance_clock`` moves it on purpose).

External events: ``raise_event`` queues the event; the driver writes it into the history as an
EventRaised(15) ``{Name, Input}`` in a new episode, as the host does, and replays -- whether the
orchestrator waits for it yet or not. The SDK then matches it to a ``wait_for_external_event`` of
that name or keeps it for a later one (see ``runner.actions`` for its limits with several early
events of one name, reported as ``EventBufferingWarning``). Events queued but not yet written
when a generation continues as new go to the next generation; when the instance ends, dropped.

Not supported (raise ``UnsupportedDurableFeature``): entities, durable HTTP.

The package docstring (``runner/__init__.py``) lists the modules behind this one.

Who may import it: anyone (tests, ``cli``, the demo, ``runner.client``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.utils.df_serialization import df_dumps

from runner.actions import check_determinism, continue_as_new_input
from runner.clock import OrchestrationClock
from runner.functions import FunctionRegistry, OrchestratorFunction
from runner.history import (
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    TIMESTAMP_FORMAT,
    event,
    execution_started,
    format_timestamp,
)
from runner.instances import InstanceStore
from runner.protocol import ProtocolOptions, context_payload, custom_status_json, replay_once
from runner.records import (
    ACTIVE_STATUSES,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TERMINATED,
    EventBufferingWarning,
    InstanceAlreadyExists,
    InstanceNotRunning,
    InstanceRecord,
    OrchestrationResult,
    UnsupportedDurableFeature,
)
from runner.scheduler import Scheduler
from runner.work import Outcome, call_activity, start_suborchestration

__all__ = [
    "ACTIVE_STATUSES",
    "COMPLETED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "TERMINATED",
    "TIMESTAMP_FORMAT",
    "EventBufferingWarning",
    "InstanceAlreadyExists",
    "InstanceNotRunning",
    "InstanceRecord",
    "LocalOrchestrationRunner",
    "OrchestrationResult",
    "UnsupportedDurableFeature",
    "format_timestamp",
]

log = logging.getLogger(__name__)


@dataclass
class _Stats:
    """Counters of one ``_drive`` call, all generations."""

    wall_start: float = field(default_factory=time.monotonic)
    generations: int = 0
    replays: int = 0
    activity_calls: int = 0


class LocalOrchestrationRunner:
    """Drives orchestrator functions through the real SDK replay engine.

    Functions come from v2 apps/blueprints (``*apps``: DFApp, FunctionApp or Blueprint, read without
    ``get_functions()``) and/or explicit registries: ``orchestrators`` (name -> generator function,
    decorated builder or SDK handle; or a list of those) and ``activities`` (name -> callable taking
    the decoded input, or a decorated activity; or a list). Activity inputs and outputs go through
    the SDK's ``ActivityTriggerConverter`` exactly as the worker does, so an output that is not JSON
    fails the activity.

    ``on_status(instance_id, custom_status)`` is called on every custom status transition (each time
    a turn ends with a different value), from the driver's thread.

    ``event_grace``: wall seconds an idle orchestration waiting for an external event and a timer
    gives ``raise_event`` before the timer fires early; ``None`` waits for the timer's own time.
    """

    def __init__(
        self,
        *apps: Any,
        orchestrators: dict[str, Any] | Iterable[Any] | None = None,
        activities: dict[str, Any] | Iterable[Any] | None = None,
        max_workers: int = 8,
        real_time: bool = False,
        on_status: Callable[[str, Any], None] | None = None,
        schema_version: int = 2,
        max_short_timer: timedelta | None = timedelta(days=6),
        long_timer_interval: timedelta | None = timedelta(days=3),
        clock_start: datetime | None = None,
        max_generations: int | None = None,
        event_grace: float | None = 2.0,
    ) -> None:
        self.registry = FunctionRegistry()
        for app in apps:
            self.registry.add_container(app)
        if orchestrators is not None:
            self.registry.add_orchestrators(orchestrators)
        if activities is not None:
            self.registry.add_activities(activities)
        if schema_version not in (0, 1, 2):
            raise ValueError("schema_version must be 0 (V1), 1 (V2) or 2 (V3)")
        self.real_time = real_time
        self.on_status = on_status
        self.schema_version = schema_version
        self.max_short_timer = max_short_timer
        self.long_timer_interval = long_timer_interval
        self.max_generations = max_generations
        self.event_grace = event_grace
        self.clock = OrchestrationClock(clock_start)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="activity")
        self._store = InstanceStore(self.clock)

    # ------------------------------------------------------------------ public API

    def run(self, orchestrator: Any, input: Any = None, *, instance_id: str | None = None) -> OrchestrationResult:
        """Run an orchestration to its end on this thread and return how it ended.

        ``orchestrator`` is a registered name, a generator function, a decorated builder/Function or
        the SDK handle. Runner errors (unsupported API, non-JSON input) raise; orchestrator errors
        come back as ``status == "Failed"``.
        """
        record, fn, input_type = self._new_instance(orchestrator, _dumps_input(input), instance_id, None)
        return self._drive(record, fn, input_type)

    def start(
        self, orchestrator: Any, input: Any = None, *, instance_id: str | None = None, input_json: str | None = None
    ) -> str:
        """Start an orchestration on a background thread and return its instance id at once."""
        payload = input_json if input_json is not None else _dumps_input(input)
        record, fn, input_type = self._new_instance(orchestrator, payload, instance_id, None)

        def target() -> None:
            try:
                self._drive(record, fn, input_type)
            except BaseException as exc:  # surfaced by wait()
                log.exception("local orchestration %s crashed", record.instance_id)
                record.failure = exc
                self._store.touch(record, runtime_status=FAILED, error=f"local runner error: {exc}")
                record.done.set()

        threading.Thread(target=target, name=f"orchestration-{record.instance_id}", daemon=True).start()
        return record.instance_id

    def wait(self, instance_id: str, timeout: float | None = None) -> OrchestrationResult:
        """Block until the instance ends; re-raise a runner error from its background thread."""
        record = self.get(instance_id)
        if record is None:
            raise KeyError(f"no instance {instance_id!r}")
        if not record.done.wait(timeout):
            raise TimeoutError(f"instance {instance_id} still {record.runtime_status} after {timeout}s")
        if record.failure is not None:
            raise record.failure
        assert record.result is not None
        return record.result

    def get(self, instance_id: str) -> InstanceRecord | None:
        return self._store.get(instance_id)

    def instances(self) -> list[InstanceRecord]:
        return self._store.all()

    def terminate(self, instance_id: str, reason: str) -> bool:
        """Ask a running instance to stop after its current turn. False when it is not running."""
        record = self.get(instance_id)
        if record is None:
            raise KeyError(f"no instance {instance_id!r}")
        if record.runtime_status not in ACTIVE_STATUSES:
            return False
        record.terminate_reason = reason
        record.wake.set()
        return True

    def raise_event(self, instance_id: str, event_name: str, event_data: Any = None, *,
                    data_json: str | None = None) -> None:
        """Deliver an external event, as the host's raiseEvent API does.

        ``event_data`` is sent as ``json.dumps`` makes it (as the SDK's client does), or give the
        JSON text as ``data_json``. The instance gets the event even if it does not wait for it
        yet. Raises ``KeyError`` for an unknown instance (the host's 404) and
        ``InstanceNotRunning`` for one that has ended (410).
        """
        if not event_name:
            raise ValueError("event_name must be a non-empty string.")
        payload = data_json if data_json is not None else json.dumps(event_data)
        self._store.raise_event(instance_id, event_name, payload)

    def advance_clock(self, by: timedelta) -> datetime:
        """Move the orchestration clock forward by ``by``; timers due by then fire. Returns the new time."""
        self.clock.advance_to(self.clock.now() + by)
        for record in self._store.all():
            record.wake.set()
        return self.clock.now()

    def purge(self, instance_id: str) -> bool:
        """Forget a finished instance; False when it is unknown or still active."""
        return self._store.purge(instance_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> LocalOrchestrationRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ instances

    def _new_instance(
        self, orchestrator: Any, input_json: str | None, instance_id: str | None, parent: str | None
    ) -> tuple[InstanceRecord, OrchestratorFunction, type | None]:
        name, fn, input_type = self.registry.orchestrator(orchestrator)
        instance_id = instance_id or uuid.uuid4().hex
        now = self.clock.now()
        record = InstanceRecord(instance_id, name, input_json, parent, created_time=now, last_updated_time=now)
        self._store.add(record)
        return record, fn, input_type

    # ------------------------------------------------------------------ the driver

    def _drive(self, record: InstanceRecord, fn: OrchestratorFunction, input_type: type | None) -> OrchestrationResult:
        """Run ``record`` to its end, one ``continue_as_new`` generation after the other."""
        stats = _Stats()
        input_json = record.input_json
        while True:
            if self.max_generations is not None and stats.generations >= self.max_generations:
                return self._finish(record, FAILED, None, f"more than {self.max_generations} generations", stats)
            stats.generations += 1
            ended = self._run_generation(record, fn, input_type, input_json, stats)
            if isinstance(ended, OrchestrationResult):
                return ended
            input_json = ended  # continue_as_new: the next generation's input

    def _run_generation(
        self, record: InstanceRecord, fn: OrchestratorFunction, input_type: type | None, input_json: str | None,
        stats: _Stats,
    ) -> OrchestrationResult | str:
        """Turns of one generation until it ends (the result) or continues as new (the new input)."""
        now = self.clock.now()
        history: list[dict[str, Any]] = [
            event(ORCHESTRATOR_STARTED, now),
            execution_started(now, record.name, input_json, record.instance_id, uuid.uuid4().hex,
                              record.parent_instance_id),
        ]
        self._store.touch(record, history=history, runtime_status=RUNNING, input_json=input_json)
        scheduler = Scheduler(
            record, self.clock, real_time=self.real_time, event_grace=self.event_grace,
            start_activity=lambda name, payload: self._pool.submit(call_activity, self.registry, name, payload),
            start_suborchestration=lambda name, payload, child_id: self._start_suborchestration(
                record, name, payload, child_id),
            take_events=lambda: self._store.take_events(record),
        )
        while True:  # one pass per turn
            if record.terminate_reason is not None:
                return self._finish(record, TERMINATED, record.terminate_reason, None, stats)
            ended = self._turn(record, fn, input_type, input_json, history, scheduler, stats)
            if ended is not None:
                return ended
            completions = scheduler.await_some()
            if completions:
                history.append(event(ORCHESTRATOR_STARTED, self.clock.now()))
                history.extend(completions)
            self._store.touch(record)

    def _turn(
        self, record: InstanceRecord, fn: OrchestratorFunction, input_type: type | None, input_json: str | None,
        history: list[dict[str, Any]], scheduler: Scheduler, stats: _Stats,
    ) -> OrchestrationResult | str | None:
        """Replay once and start the new work; the end of the generation, or None to wait for work."""
        payload = context_payload(self._protocol_options(), history, input_json, record.instance_id,
                                  record.parent_instance_id)
        outcome = replay_once(fn, input_type, payload)
        stats.replays += 1
        context, error = outcome.context, outcome.error
        if error is not None:
            record.error_details = outcome.error_details
        self._note_custom_status(record, context)
        scheduler.warn_event_buffering(context)
        if error is None:
            error = check_determinism(context, scheduler.timeline)
        if error is not None:
            output = f"Orchestrator function '{record.name}' failed: {error}"
            return self._finish(record, FAILED, output, error, stats)
        if context.will_continue_as_new:
            return continue_as_new_input(context)
        if outcome.state.get("isDone"):
            return self._finish(record, COMPLETED, outcome.state.get("output"), None, stats)
        scheduled, started_activities = scheduler.schedule(context)
        stats.activity_calls += started_activities
        history.extend(scheduled)
        history.append(event(ORCHESTRATOR_COMPLETED, self.clock.now()))
        self._store.touch(record, waiting_for=scheduler.awaited)
        if scheduler.idle:
            raise RuntimeError(
                f"orchestration {record.instance_id} ({record.name}) waits, but on nothing the local runner "
                "can complete (a cancelled timer?)"
            )
        return None

    def _protocol_options(self) -> ProtocolOptions:
        return ProtocolOptions(self.schema_version, self.max_short_timer, self.long_timer_interval)

    def _finish(
        self, record: InstanceRecord, status: str, output: Any, error: str | None, stats: _Stats
    ) -> OrchestrationResult:
        result = OrchestrationResult(
            instance_id=record.instance_id, name=record.name, status=status, output=output,
            custom_status=record.custom_status, error=error, input=record.input, history_length=len(record.history),
            generations=stats.generations, replays=stats.replays, activity_calls=stats.activity_calls,
            created_time=record.created_time, finished_time=self.clock.now(),
            duration_s=time.monotonic() - stats.wall_start, history=record.history,
        )
        self._store.touch(record, runtime_status=status, output=output, error=error, result=result,
                          waiting_for=frozenset())
        record.done.set()
        return result

    def _note_custom_status(self, record: InstanceRecord, context: Any) -> None:
        status = custom_status_json(context)
        if status == record.custom_status and record.status_history:
            return
        if status is None and not record.status_history:
            return
        self._store.touch(record, custom_status=status)
        record.status_history.append(status)
        if self.on_status is not None:
            self.on_status(record.instance_id, status)

    # ------------------------------------------------------------------ sub-orchestrations

    def _start_suborchestration(
        self, parent: InstanceRecord, name: str, input_json: str | None, instance_id: str
    ) -> Future[Outcome]:
        return start_suborchestration(
            name, instance_id, lambda: self._new_instance(name, input_json, instance_id, parent.instance_id),
            self._drive,
        )


def _dumps_input(value: Any) -> str | None:
    """The input as the client sends it: ``df_dumps`` (custom objects via ``to_json``), None stays None."""
    return None if value is None else df_dumps(value)
