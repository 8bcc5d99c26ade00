"""Run Durable orchestrations without the Functions host, on the SDK's own replay engine.

``LocalOrchestrationRunner`` speaks the host's out-of-process protocol to
``azure.durable_functions.Orchestrator(fn).handle(DurableOrchestrationContext.from_json(...))``:
it keeps the orchestration's history, hands the whole of it to the SDK on every turn, reads the
state the SDK returns and the tasks still open on the context, does the work (activities in a
bounded thread pool, sub-orchestrations recursively, timers on a clock it controls), appends the
events the host would append, and calls again until the SDK says ``isDone``.

One turn ("episode") of history, as the host writes it::

    OrchestratorStarted(12)  <completions: TaskCompleted(5)/TaskFailed(6)/TimerFired(11)/Sub...(8,9)>
    <new work: TaskScheduled(4)/TimerCreated(10)/SubOrchestrationInstanceCreated(7)>
    OrchestratorCompleted(13)

The first episode carries ExecutionStarted(0) right after OrchestratorStarted (the SDK requires
exactly ``history[0]`` OrchestratorStarted and ``history[1]`` ExecutionStarted, with a ``Version``).

Facts taken from the azure-functions-durable 1.7.0 source (pinned in requirements.txt):

- The context JSON the Functions extension sends is ``{"history", "input" (the input as a JSON
  *string*), "instanceId", "isReplaying", "parentInstanceId", "upperSchemaVersion": 1,
  "upperSchemaVersionNew": 2, "longRunningTimerIntervalDuration", "maximumShortTimerDuration"}``;
  1.7.0 then uses ReplaySchema.V3 (value 2). Actions come back as ``[[a, b, ...]]`` (one flat list,
  ``task_all``/``task_any`` as WhenAll(12)/WhenAny(11) actions) for V2/V3 and as one list per
  yield for V1 (0). The runner does not depend on that shape: it reads ``context.open_tasks``.
- Every task id (activity, timer, sub-orchestration and the hidden retry tasks) comes from one
  counter in yield order; completions name it as ``TaskScheduledId`` (5, 6, 8, 9) or ``TimerId``
  (11).
- ``call_*_with_retry`` is a RetryAbleTask: after a failure the SDK opens a timer task
  (NoOpAction "-WithRetry timer") and, when it fires, a new task (NoOpAction "rescheduled task")
  that the host runs as the parent's action. After the *last* failure it still waits for one more
  timer before failing. RetryOptions has only the first interval and the attempt count (no
  backoff), so every retry waits ``first_retry_interval_in_milliseconds``.
- Failures reach the generator as ``Exception(f"{Reason} \\n {Details}")``. Reason here is what
  the extension writes: ``Activity function 'X' failed: <Type>: <message>`` or
  ``Orchestrator function 'X' failed: <message>``; Details is the Python traceback.
- An exception escaping the orchestrator makes ``handle`` raise ``Exception(f"{exc}\\n\\n
  $OutOfProcData$:{state json}")`` (from the original exception).
- Timers longer than ``maximumShortTimerDuration`` (6 days, as on Azure Storage) are split by the
  SDK into several timers of at most ``longRunningTimerIntervalDuration`` (3 days).

Time: by default timers fire as soon as nothing else is running, and the orchestration clock (the
``OrchestratorStarted`` timestamps behind ``current_utc_datetime``) jumps to the timer's fire time,
so a 5-minute durable timer costs nothing. ``real_time=True`` sleeps instead.

Not supported (raise ``UnsupportedDurableFeature``): external events, entities, durable HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions import DurableOrchestrationContext, Orchestrator
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
from azure.durable_functions.models.utils.df_serialization import df_dumps
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from runner.functions import FunctionRegistry, OrchestratorFunction, resolve_orchestrator

log = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"

# HistoryEventType values (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED = 0
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13

# Runtime status names (azure.durable_functions.models.OrchestrationRuntimeStatus values)
PENDING, RUNNING, COMPLETED, FAILED, TERMINATED = "Pending", "Running", "Completed", "Failed", "Terminated"
ACTIVE_STATUSES = frozenset({PENDING, RUNNING, "ContinuedAsNew", "Suspended"})


class UnsupportedDurableFeature(NotImplementedError):
    """The orchestrator used an API the local runner does not drive (external events, entities, HTTP)."""


class InstanceAlreadyExists(Exception):
    """``start`` with the id of an instance that is still Pending/Running (the host's default
    ``OverridableExistingInstanceStates.NonRunningStates`` refuses it the same way)."""


def format_timestamp(value: datetime) -> str:
    return _utc(value).strftime(TIMESTAMP_FORMAT)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timespan(value: timedelta) -> str:
    """A .NET TimeSpan ``c`` string (``d.hh:mm:ss``), as the extension sends timer durations."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02}:{minutes:02}:{seconds:02}"


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

    @property
    def input(self) -> Any:
        return None if self.input_json is None else json.loads(self.input_json)


class _Clock:
    """Orchestration time: wall clock plus the time skipped by timers fired early. Never goes back."""

    def __init__(self, start: datetime | None = None) -> None:
        now = datetime.now(UTC)
        self._offset = (_utc(start) - now) if start is not None else timedelta(0)
        self._last = now + self._offset
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._last = max(self._last, datetime.now(UTC) + self._offset)
            return self._last

    def advance_to(self, moment: datetime) -> None:
        with self._lock:
            current = max(self._last, datetime.now(UTC) + self._offset)
            if moment > current:
                self._offset += moment - current
                self._last = moment


@dataclass
class _Work:
    """A task the runner started: activity / sub-orchestration (a future) or timer (a fire time)."""

    kind: str  # "activity" | "suborchestration" | "timer"
    name: str
    future: Future[Any] | None = None
    fire_at: datetime | None = None


@dataclass
class _Outcome:
    ok: bool
    result_json: str | None = None
    reason: str = ""
    details: str = ""
    finished: float = field(default_factory=time.monotonic)


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
        self.clock = _Clock(clock_start)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="activity")
        self._instances: dict[str, InstanceRecord] = {}
        self._lock = threading.Lock()

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
                self._touch(record, runtime_status=FAILED, error=f"local runner error: {exc}")
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
        with self._lock:
            return self._instances.get(instance_id)

    def instances(self) -> list[InstanceRecord]:
        with self._lock:
            return list(self._instances.values())

    def terminate(self, instance_id: str, reason: str) -> bool:
        """Ask a running instance to stop after its current turn. False when it is not running."""
        record = self.get(instance_id)
        if record is None:
            raise KeyError(f"no instance {instance_id!r}")
        if record.runtime_status not in ACTIVE_STATUSES:
            return False
        record.terminate_reason = reason
        return True

    def purge(self, instance_id: str) -> bool:
        with self._lock:
            record = self._instances.get(instance_id)
            if record is None or record.runtime_status in ACTIVE_STATUSES:
                return False
            del self._instances[instance_id]
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> LocalOrchestrationRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ instances

    def _resolve(self, orchestrator: Any) -> tuple[str, OrchestratorFunction, type | None]:
        if isinstance(orchestrator, str):
            found = self.registry.orchestrators.get(orchestrator)
            if found is None:
                raise KeyError(
                    f"The function '{orchestrator}' doesn't exist, is disabled, or is not an orchestrator function."
                    f" Known orchestrators: {sorted(self.registry.orchestrators)}"
                )
            return orchestrator, found[0], found[1]
        name, fn, input_type = resolve_orchestrator(orchestrator)
        self.registry.orchestrators.setdefault(name, (fn, input_type))
        return name, fn, input_type

    def _new_instance(
        self, orchestrator: Any, input_json: str | None, instance_id: str | None, parent: str | None
    ) -> tuple[InstanceRecord, OrchestratorFunction, type | None]:
        name, fn, input_type = self._resolve(orchestrator)
        instance_id = instance_id or uuid.uuid4().hex
        now = self.clock.now()
        record = InstanceRecord(instance_id, name, input_json, parent, created_time=now, last_updated_time=now)
        with self._lock:
            existing = self._instances.get(instance_id)
            if existing is not None and existing.runtime_status in ACTIVE_STATUSES:
                raise InstanceAlreadyExists(
                    f"An Orchestration instance with the status {existing.runtime_status} already exists."
                )
            self._instances[instance_id] = record
        return record, fn, input_type

    def _touch(self, record: InstanceRecord, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)
            record.last_updated_time = self.clock.now()

    # ------------------------------------------------------------------ the driver

    def _drive(self, record: InstanceRecord, fn: OrchestratorFunction, input_type: type | None) -> OrchestrationResult:
        wall_start = time.monotonic()
        generations = replays = activity_calls = 0
        input_json = record.input_json
        while True:  # one pass per continue_as_new generation
            generations += 1
            if self.max_generations is not None and generations > self.max_generations:
                return self._finish(record, FAILED, None, f"more than {self.max_generations} generations",
                                    generations - 1, replays, activity_calls, wall_start)
            now = self.clock.now()
            history: list[dict[str, Any]] = [
                _event(ORCHESTRATOR_STARTED, now),
                _event(
                    EXECUTION_STARTED, now, Name=record.name, Version="", Input=input_json,
                    OrchestrationInstance={"InstanceId": record.instance_id, "ExecutionId": uuid.uuid4().hex},
                    ParentInstance=(
                        {"OrchestrationInstance": {"InstanceId": record.parent_instance_id}}
                        if record.parent_instance_id else None
                    ),
                    Tags=None,
                ),
            ]
            self._touch(record, history=history, runtime_status=RUNNING, input_json=input_json)
            in_flight: dict[int, _Work] = {}
            timeline: list[tuple[str, str]] = []  # (kind, name) of each task started from an action
            seen: set[int] = set()
            while True:  # one pass per turn
                if record.terminate_reason is not None:
                    return self._finish(record, TERMINATED, record.terminate_reason, None, generations, replays,
                                        activity_calls, wall_start)
                state, context, error = self._replay(record, fn, input_type, history, input_json)
                replays += 1
                self._note_custom_status(record, context)
                if error is None:
                    error = self._check_determinism(context, timeline)
                if error is not None:
                    output = f"Orchestrator function '{record.name}' failed: {error}"
                    return self._finish(record, FAILED, output, error, generations, replays, activity_calls,
                                        wall_start)
                if context.will_continue_as_new:
                    input_json = _continue_as_new_input(context)
                    break
                if state.get("isDone"):
                    return self._finish(record, COMPLETED, state.get("output"), None, generations, replays,
                                        activity_calls, wall_start)
                scheduled, started_activities = self._schedule(record, context, in_flight, timeline, seen)
                activity_calls += started_activities
                history.extend(scheduled)
                history.append(_event(ORCHESTRATOR_COMPLETED, self.clock.now()))
                if not in_flight:
                    raise RuntimeError(
                        f"orchestration {record.instance_id} ({record.name}) waits, but on nothing the local runner "
                        "can complete (a cancelled timer?)"
                    )
                completions = self._await_some(record, in_flight)
                if completions:
                    history.append(_event(ORCHESTRATOR_STARTED, self.clock.now()))
                    history.extend(completions)
                self._touch(record)

    def _finish(
        self, record: InstanceRecord, status: str, output: Any, error: str | None, generations: int, replays: int,
        activity_calls: int, wall_start: float,
    ) -> OrchestrationResult:
        result = OrchestrationResult(
            instance_id=record.instance_id, name=record.name, status=status, output=output,
            custom_status=record.custom_status, error=error, input=record.input, history_length=len(record.history),
            generations=generations, replays=replays, activity_calls=activity_calls,
            created_time=record.created_time, finished_time=self.clock.now(),
            duration_s=time.monotonic() - wall_start, history=record.history,
        )
        self._touch(record, runtime_status=status, output=output, error=error, result=result)
        record.done.set()
        return result

    def _replay(
        self, record: InstanceRecord, fn: OrchestratorFunction, input_type: type | None,
        history: list[dict[str, Any]], input_json: str | None,
    ) -> tuple[dict[str, Any], Any, str | None]:
        """One call into the SDK. Returns (state, context, orchestrator error message or None)."""
        last_start = max(i for i, e in enumerate(history) if e["EventType"] == ORCHESTRATOR_STARTED)
        payload: dict[str, Any] = {
            "history": [dict(e, IsPlayed=i < last_start) for i, e in enumerate(history)],
            "input": input_json,
            "instanceId": record.instance_id,
            "isReplaying": False,
            "parentInstanceId": record.parent_instance_id,
            "upperSchemaVersion": min(self.schema_version, 1),
        }
        if self.schema_version >= 2:
            payload["upperSchemaVersionNew"] = self.schema_version
        if self.max_short_timer is not None and self.long_timer_interval is not None:
            payload["maximumShortTimerDuration"] = _timespan(self.max_short_timer)
            payload["longRunningTimerIntervalDuration"] = _timespan(self.long_timer_interval)
        context = DurableOrchestrationContext.from_json(json.dumps(payload))
        context._input_expected_type = input_type  # as Orchestrator.create's handle does
        try:
            state = json.loads(Orchestrator(fn).handle(context))
        except Exception as exc:
            message, label, state_json = str(exc).partition(OUT_OF_PROC_LABEL)
            state = json.loads(state_json) if label else {"isDone": False, "actions": [], "error": message}
            cause = exc.__cause__ if label and exc.__cause__ is not None else exc
            record.error_details = "".join(traceback.format_exception(cause)).rstrip()
            return state, context, message
        return state, context, None

    def _note_custom_status(self, record: InstanceRecord, context: Any) -> None:
        status = context.custom_status
        if status is not None:
            status = json.loads(df_dumps(status))  # what the host stores and get_status returns
        if status == record.custom_status and record.status_history:
            return
        if status is None and not record.status_history:
            return
        self._touch(record, custom_status=status)
        record.status_history.append(status)
        if self.on_status is not None:
            self.on_status(record.instance_id, status)

    # ------------------------------------------------------------------ scheduling

    def _open_tasks(self, context: Any) -> list[Any]:
        tasks: list[Any] = []
        for value in list(context.open_tasks.values()):
            tasks.extend(value if isinstance(value, list) else [value])
        return tasks

    def _describe(self, task: Any) -> tuple[str, str, Any]:
        """(kind, function name, action to run) of an open atomic task."""
        action = task._get_action()
        if isinstance(action, NoOpAction):
            parent = task.parent
            if "timer" in (action.metadata or ""):
                return "timer", "", None  # a -WithRetry timer: fire time computed by the caller
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

    def _check_determinism(self, context: Any, timeline: list[tuple[str, str]]) -> str | None:
        """Compare what the replay scheduled with what the history says was scheduled, in order.

        ``timeline`` lists the (kind, name) of every task the runner started from an action (not the
        hidden retry tasks), in task-id order; the SDK's actions list the same tasks in yield order.
        """
        if context.deferred_tasks:
            ids = ", ".join(sorted(map(str, context.deferred_tasks)))
            return (f"Non-deterministic workflow detected: the history completes task(s) {ids} that the "
                    "orchestrator did not schedule on replay")
        replayed = list(_scheduling_actions(context._actions))
        for index, expected in enumerate(timeline):
            got = replayed[index] if index < len(replayed) else None
            if got != expected:
                now = f"{got[0]} {got[1]!r}" if got else "nothing"
                return (f"Non-deterministic workflow detected: step {index} of the history is {expected[0]} "
                        f"{expected[1]!r} but the orchestrator now schedules {now}")
        return None

    def _schedule(
        self, record: InstanceRecord, context: Any, in_flight: dict[int, _Work], timeline: list[tuple[str, str]],
        seen: set[int],
    ) -> tuple[list[dict[str, Any]], int]:
        """Start the open tasks not started yet; return their history events and the activity count."""
        events: list[dict[str, Any]] = []
        activities = 0
        open_ids: set[int] = set()
        for task in sorted(self._open_tasks(context), key=lambda t: (not isinstance(t.id, int), str(t.id))):
            kind, name, action = self._describe(task)
            task_id = task.id
            open_ids.add(task_id)
            if task_id not in seen:
                seen.add(task_id)
                if not isinstance(task._get_action(), NoOpAction):
                    timeline.append((kind, name))
            if kind == "timer" and action is not None and action.is_cancelled:
                in_flight.pop(task_id, None)  # a cancelled timer never fires
                continue
            if task_id in in_flight:
                continue
            now = self.clock.now()
            if kind == "activity":
                events.append(_event(TASK_SCHEDULED, now, EventId=task_id, Name=name, Input=action.input_))
                future = self._pool.submit(self._call_activity, name, action.input_)
                in_flight[task_id] = _Work(kind, name, future=future)
                activities += 1
            elif kind == "suborchestration":
                child_id = action.instance_id or f"{record.instance_id}:{task_id}"
                events.append(_event(SUB_ORCHESTRATION_CREATED, now, EventId=task_id, Name=name, InstanceId=child_id,
                                     Input=action._input))
                future = self._start_suborchestration(record, name, action._input, child_id)
                in_flight[task_id] = _Work(kind, name, future=future)
            else:
                if action is not None:
                    fire_at = _utc(action.fire_at)
                else:  # -WithRetry timer; after the last attempt the SDK still wants one timer: fire it now
                    parent = task.parent
                    options = parent.retry_options
                    delay = timedelta(0)
                    if parent.num_attempts < options.max_number_of_attempts:
                        delay = timedelta(milliseconds=options.first_retry_interval_in_milliseconds)
                    fire_at = now + delay
                events.append(_event(TIMER_CREATED, now, EventId=task_id, FireAt=format_timestamp(fire_at)))
                in_flight[task_id] = _Work("timer", "", fire_at=fire_at)
        for task_id in [t for t, w in in_flight.items() if w.kind == "timer" and t not in open_ids]:
            del in_flight[task_id]  # a timer nobody waits for any more
        return events, activities

    def _await_some(self, record: InstanceRecord, in_flight: dict[int, _Work]) -> list[dict[str, Any]]:
        """Wait for at least one task to finish; return completion events (empty on terminate)."""
        futures = {w.future: task_id for task_id, w in in_flight.items() if w.future is not None}
        timers = {task_id: w.fire_at for task_id, w in in_flight.items() if w.fire_at is not None}
        done_ids: list[int] = []
        while not done_ids:
            if record.terminate_reason is not None:
                return []
            timeout = 0.1
            if self.real_time and timers:
                timeout = min(timeout, max(0.0, (min(timers.values()) - self.clock.now()).total_seconds()))
            if futures:
                done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
                finished = sorted(done, key=lambda f: _finish_time(f))
                done_ids.extend(futures[f] for f in finished)
            elif self.real_time:
                time.sleep(timeout)
            if timers and not done_ids:
                if not self.real_time and not futures:
                    self.clock.advance_to(min(timers.values()))  # fire early: jump the clock instead
                now = self.clock.now()
                done_ids.extend(sorted((t for t, at in timers.items() if at <= now), key=lambda t: timers[t]))
        events: list[dict[str, Any]] = []
        for task_id in done_ids:
            work = in_flight.pop(task_id)
            events.append(self._completion_event(task_id, work))
        return events

    def _completion_event(self, task_id: int, work: _Work) -> dict[str, Any]:
        now = self.clock.now()
        if work.kind == "timer":
            assert work.fire_at is not None
            return _event(TIMER_FIRED, now, TimerId=task_id, FireAt=format_timestamp(work.fire_at))
        assert work.future is not None
        outcome = work.future.result()  # runner errors (e.g. unsupported API in a sub-orchestration) raise here
        if work.kind == "activity":
            if outcome.ok:
                return _event(TASK_COMPLETED, now, TaskScheduledId=task_id, Result=outcome.result_json)
            return _event(TASK_FAILED, now, TaskScheduledId=task_id, Reason=outcome.reason, Details=outcome.details)
        if outcome.ok:
            return _event(SUB_ORCHESTRATION_COMPLETED, now, TaskScheduledId=task_id, Result=outcome.result_json)
        return _event(SUB_ORCHESTRATION_FAILED, now, TaskScheduledId=task_id, Reason=outcome.reason,
                      Details=outcome.details)

    # ------------------------------------------------------------------ work

    def _call_activity(self, name: str, input_json: str | None) -> _Outcome:
        activity = self.registry.activities.get(name)
        if activity is None:
            return _Outcome(False, reason=f"The function '{name}' doesn't exist, is disabled, or is not an activity "
                            f"function. Known activities: {sorted(self.registry.activities)}")
        try:
            value = ActivityTriggerConverter.decode(meta.Datum(input_json, "json"), trigger_metadata=None)
            result = activity(value)
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
        except Exception as exc:
            log.info("activity %s failed: %s", name, exc)
            return _Outcome(False, reason=f"Activity function '{name}' failed: {type(exc).__name__}: {exc}",
                            details="".join(traceback.format_exception(exc)).rstrip())
        return _Outcome(True, result_json=encoded.value)

    def _start_suborchestration(
        self, parent: InstanceRecord, name: str, input_json: str | None, instance_id: str
    ) -> Future[_Outcome]:
        future: Future[_Outcome] = Future()

        def target() -> None:
            try:
                record, fn, input_type = self._new_instance(name, input_json, instance_id, parent.instance_id)
            except (KeyError, InstanceAlreadyExists) as exc:
                future.set_result(_Outcome(False, reason=str(exc).strip("\"'")))
                return
            try:
                result = self._drive(record, fn, input_type)
            except BaseException as exc:
                record.failure = exc
                record.done.set()
                future.set_exception(exc)
                return
            if result.status == COMPLETED:
                future.set_result(_Outcome(True, result_json=json.dumps(result.output)))
            else:
                future.set_result(_Outcome(False, reason=f"Orchestrator function '{name}' failed: {result.error}",
                                           details=record.error_details))

        threading.Thread(target=target, name=f"orchestration-{instance_id}", daemon=True).start()
        return future


def _finish_time(future: Future[Any]) -> float:
    if future.exception() is not None:
        return 0.0
    outcome = future.result()
    return outcome.finished if isinstance(outcome, _Outcome) else 0.0


def _event(event_type: int, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"EventType": event_type, "EventId": -1, "IsPlayed": False,
                             "Timestamp": format_timestamp(timestamp)}
    event.update(fields)
    return event


def _dumps_input(value: Any) -> str | None:
    """The input as the client sends it: ``df_dumps`` (custom objects via ``to_json``), None stays None."""
    return None if value is None else df_dumps(value)


def _flatten(items: Any) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        elif isinstance(item, CompoundAction):
            yield from _flatten(item.compound_tasks)
        else:
            yield item


def _scheduling_actions(actions: Any) -> Iterable[tuple[str, str]]:
    """(kind, name) of the actions that become tasks with ids, in order (WhenAll/WhenAny unpacked)."""
    for action in _flatten(actions):
        if isinstance(action, CallActivityAction | CallActivityWithRetryAction):
            yield "activity", action.function_name
        elif isinstance(action, CallSubOrchestratorAction | CallSubOrchestratorWithRetryAction):
            yield "suborchestration", action.function_name
        elif isinstance(action, CreateTimerAction):
            yield "timer", ""


def _continue_as_new_input(context: Any) -> str | None:
    for action in _flatten(context._actions):
        if isinstance(action, ContinueAsNewAction):
            return str(action.input_)
    raise RuntimeError("continue_as_new was called but no ContinueAsNew action was returned")
