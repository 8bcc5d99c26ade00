"""The work in flight for one generation of one instance: start open tasks, wait, report completions.

Contract: a ``Scheduler`` lives for one ``continue_as_new`` generation. After each replay the
driver calls ``schedule(context)``, which starts every open task not started yet and returns the
history events the host would write for them (TaskScheduled 4, SubOrchestrationInstanceCreated 7,
TimerCreated 10) and how many activities it started; then ``await_some()``, which blocks until
at least one piece of work finishes or an external event is raised, and returns the events
(EventRaised 15 first, in the order raised, then 5/6, 8/9, 11 in the order they finished) -- or
nothing when the instance is asked to terminate. ``timeline`` is the (kind, name) of every task
started from an action, in task-id order, for the determinism check; ``awaited`` the names of
the external events the orchestrator waits for (a wait starts no work and writes no event).
``warn_event_buffering(context)``, after every replay, issues ``EventBufferingWarning``.

Time: a timer fires when the orchestration clock reaches its fire time. Unless ``real_time``,
the clock jumps to the earliest timer as soon as nothing else can progress, so a durable timer
costs no wall time; with ``real_time`` the scheduler sleeps until it is due. "Nothing else can
progress" means no activity or sub-orchestration is running and, if the orchestrator waits for an
external event, ``event_grace`` wall seconds went by without one (``None``: never -- the timer
then fires when its time comes, or when ``advance_clock`` moves the clock past it).
A ``call_*_with_retry`` retry timer fires ``first_retry_interval_in_milliseconds`` after the
failure (RetryOptions has no backoff); after the *last* failure the SDK still waits for one more
timer before failing, and that one fires at once.

Who may import it: ``runner.replay`` only.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timedelta
from typing import Any

from runner.actions import describe, event_buffer_problems, is_hidden_retry_task, open_tasks, open_waits
from runner.clock import OrchestrationClock
from runner.history import (
    EVENT_RAISED,
    SUB_ORCHESTRATION_COMPLETED,
    SUB_ORCHESTRATION_CREATED,
    SUB_ORCHESTRATION_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    event,
    format_timestamp,
    utc,
)
from runner.records import EventBufferingWarning, InstanceRecord
from runner.work import Outcome, Work, finish_time

StartActivity = Callable[[str, str | None], "Future[Outcome]"]  # (name, input json)
StartSubOrchestration = Callable[[str, str | None, str], "Future[Outcome]"]  # (name, input json, instance id)
TakeEvents = Callable[[], list[tuple[str, str]]]  # the (name, input json) raised since the last call

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting driver looks at terminate requests and the clock
IDLE_NOTICE_S = 10.0  # log once when an orchestration has waited this long for external events only


class Scheduler:
    """Starts the tasks an orchestrator opened and turns finished work into history events."""

    def __init__(
        self, record: InstanceRecord, clock: OrchestrationClock, *, real_time: bool, event_grace: float | None,
        start_activity: StartActivity, start_suborchestration: StartSubOrchestration, take_events: TakeEvents,
    ) -> None:
        self.record = record
        self.clock = clock
        self.real_time = real_time
        self.event_grace = event_grace
        self._start_activity = start_activity
        self._start_suborchestration = start_suborchestration
        self._take_events = take_events
        self.in_flight: dict[int, Work] = {}
        self.timeline: list[tuple[str, str]] = []  # (kind, name) of each task started from an action
        self.awaited: frozenset[str] = frozenset()  # external events the orchestrator waits for
        self._seen: set[int] = set()
        self._raised: Counter[str] = Counter()  # EventRaised written into this generation's history
        self._warned: set[tuple[str, str]] = set()

    @property
    def idle(self) -> bool:
        """Nothing started is still running or waiting to fire, and no external event is awaited."""
        return not self.in_flight and not self.awaited

    # ------------------------------------------------------------------ starting work

    def schedule(self, context: Any) -> tuple[list[dict[str, Any]], int]:
        """Start the open tasks not started yet; return their history events and the activity count."""
        events: list[dict[str, Any]] = []
        activities = 0
        open_ids: set[int] = set()
        self.awaited = frozenset(open_waits(context))
        for task in sorted(open_tasks(context), key=lambda t: (not isinstance(t.id, int), str(t.id))):
            kind, name, action = describe(task)
            if kind == "event":
                continue
            task_id = task.id
            open_ids.add(task_id)
            if task_id not in self._seen:
                self._seen.add(task_id)
                if not is_hidden_retry_task(task):
                    self.timeline.append((kind, name))
            if kind == "timer" and action is not None and action.is_cancelled:
                self.in_flight.pop(task_id, None)  # a cancelled timer never fires
                continue
            if task_id not in self.in_flight:
                events.append(self._start(task, task_id, kind, name, action))
                activities += kind == "activity"
        for task_id in [t for t, w in self.in_flight.items() if w.kind == "timer" and t not in open_ids]:
            del self.in_flight[task_id]  # a timer nobody waits for any more
        return events, activities

    def _start(self, task: Any, task_id: int, kind: str, name: str, action: Any) -> dict[str, Any]:
        now = self.clock.now()
        if kind == "activity":
            self.in_flight[task_id] = Work(kind, name, future=self._start_activity(name, action.input_))
            return event(TASK_SCHEDULED, now, EventId=task_id, Name=name, Input=action.input_)
        if kind == "suborchestration":
            child_id = action.instance_id or f"{self.record.instance_id}:{task_id}"
            future = self._start_suborchestration(name, action._input, child_id)
            self.in_flight[task_id] = Work(kind, name, future=future)
            return event(SUB_ORCHESTRATION_CREATED, now, EventId=task_id, Name=name, InstanceId=child_id,
                         Input=action._input)
        fire_at = utc(action.fire_at) if action is not None else self._retry_fire_at(task, now)
        self.in_flight[task_id] = Work("timer", "", fire_at=fire_at)
        return event(TIMER_CREATED, now, EventId=task_id, FireAt=format_timestamp(fire_at))

    def warn_event_buffering(self, context: Any) -> None:
        """After any replay: warn (once per name and problem) when the SDK mishandled early events."""
        for key, problem in event_buffer_problems(context, self._raised).items():
            if key not in self._warned:
                self._warned.add(key)
                message = (f"orchestration {self.record.instance_id} ({self.record.name}): {problem} "
                           "(Azure/azure-functions-durable-python#507; the host behaves the same)")
                log.warning("%s", message)
                warnings.warn(message, EventBufferingWarning, stacklevel=2)

    @staticmethod
    def _retry_fire_at(task: Any, now: datetime) -> datetime:
        """Fire time of a -WithRetry timer; after the last attempt the SDK still wants one: now."""
        parent = task.parent
        options = parent.retry_options
        delay = timedelta(0)
        if parent.num_attempts < options.max_number_of_attempts:
            delay = timedelta(milliseconds=options.first_retry_interval_in_milliseconds)
        return now + delay

    # ------------------------------------------------------------------ waiting for it

    def await_some(self) -> list[dict[str, Any]]:
        """Wait until work finishes or an event is raised; return their history events (none on terminate)."""
        futures = {w.future: task_id for task_id, w in self.in_flight.items() if w.future is not None}
        timers = {task_id: w.fire_at for task_id, w in self.in_flight.items() if w.fire_at is not None}
        idle_since = time.monotonic()
        notice_at = idle_since + IDLE_NOTICE_S if not futures and not timers else float("inf")
        while True:
            self.record.wake.clear()  # before looking, so a raise_event from now on ends the wait below
            if self.record.terminate_reason is not None:
                return []
            raised = self._raised_events()
            done_ids = [futures[f] for f in sorted((f for f in futures if f.done()), key=finish_time)]
            if timers and not done_ids and not raised:
                if not futures and self._may_fire_early(idle_since):
                    self.clock.advance_to(min(timers.values()))  # fire early: jump the clock instead
                now = self.clock.now()
                done_ids.extend(sorted((t for t, at in timers.items() if at <= now), key=lambda t: timers[t]))
            if raised or done_ids:
                return raised + [self._completion_event(task_id, self.in_flight.pop(task_id)) for task_id in done_ids]
            if time.monotonic() >= notice_at:
                log.warning("orchestration %s (%s) has waited %.0f s for external event(s) %s and nothing else",
                            self.record.instance_id, self.record.name, IDLE_NOTICE_S, sorted(self.awaited))
                notice_at = float("inf")
            timeout = POLL_S
            if self.real_time and timers:
                timeout = min(timeout, max(0.0, (min(timers.values()) - self.clock.now()).total_seconds()))
            if futures:
                wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                self.record.wake.wait(timeout)

    def _may_fire_early(self, idle_since: float) -> bool:
        """Whether a timer may fire before its time: nothing runs, and no external event is expected."""
        if self.real_time:
            return False
        if not self.awaited:
            return True
        return self.event_grace is not None and time.monotonic() - idle_since >= self.event_grace

    def _raised_events(self) -> list[dict[str, Any]]:
        """EventRaised events for what was raised since the last look, oldest first."""
        now = self.clock.now()
        events = []
        for name, input_json in self._take_events():
            self._raised[name] += 1
            events.append(event(EVENT_RAISED, now, Name=name, Input=input_json))
        return events

    def _completion_event(self, task_id: int, work: Work) -> dict[str, Any]:
        now = self.clock.now()
        if work.kind == "timer":
            assert work.fire_at is not None
            return event(TIMER_FIRED, now, TimerId=task_id, FireAt=format_timestamp(work.fire_at))
        assert work.future is not None
        outcome = work.future.result()  # runner errors (e.g. unsupported API in a sub-orchestration) raise here
        if work.kind == "activity":
            if outcome.ok:
                return event(TASK_COMPLETED, now, TaskScheduledId=task_id, Result=outcome.result_json)
            return event(TASK_FAILED, now, TaskScheduledId=task_id, Reason=outcome.reason, Details=outcome.details)
        if outcome.ok:
            return event(SUB_ORCHESTRATION_COMPLETED, now, TaskScheduledId=task_id, Result=outcome.result_json)
        return event(SUB_ORCHESTRATION_FAILED, now, TaskScheduledId=task_id, Reason=outcome.reason,
                     Details=outcome.details)
