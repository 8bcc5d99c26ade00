"""External events on the local runner: raise_event -> EventRaised(15) -> the SDK's own replay.

Every orchestrator here runs on the real azure-functions-durable replay engine; nothing about the
context is mocked. A test that needs the event to arrive *before* the orchestrator waits holds the
orchestrator in an activity until the event is in; one that needs it to arrive *while* it waits
polls ``InstanceRecord.waiting_for``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import azure.durable_functions as df
import pytest

from runner import (
    EventBufferingWarning,
    InstanceNotRunning,
    LocalDurableClient,
    LocalOrchestrationRunner,
)

# The SDK warns "Potential duplicate Task completion" for every event that arrives before its wait.
pytestmark = pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")

bp = df.Blueprint()
GATES: dict[str, threading.Event] = {}  # token -> released by the test
GATE_ENTERED: dict[str, threading.Event] = {}  # token -> set once the activity runs

EVENT_RAISED = 15
TIMER_CREATED, TIMER_FIRED = 10, 11


@bp.activity_trigger(input_name="token")
def hold(token: str) -> str:
    GATE_ENTERED[token].set()
    if not GATES[token].wait(10):
        raise TimeoutError("never released")
    return "held"


@bp.orchestration_trigger(context_name="context")
def waits_for_approval(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Approval"))


@bp.orchestration_trigger(context_name="context")
def holds_then_waits(context: df.DurableOrchestrationContext):
    """The event is raised while ``hold`` runs, i.e. before the orchestrator waits for it."""
    payload = context.get_input()
    yield context.call_activity("hold", payload["token"])
    received = []
    for _ in range(payload["waits"]):
        received.append((yield context.wait_for_external_event(payload["name"])))
    return received


@bp.orchestration_trigger(context_name="context")
def collects(context: df.DurableOrchestrationContext):
    items = []
    for _ in range(context.get_input()):
        items.append((yield context.wait_for_external_event("Item")))
    return items


@bp.orchestration_trigger(context_name="context")
def gate(context: df.DurableOrchestrationContext):
    """The validation-gate shape: a verdict or a deadline, whichever comes first."""
    hours = context.get_input()
    started = context.current_utc_datetime
    deadline = context.create_timer(started + timedelta(hours=hours))
    verdict = context.wait_for_external_event("Verdict")
    winner = yield context.task_any([verdict, deadline])
    waited_s = (context.current_utc_datetime - started).total_seconds()
    if winner == verdict:
        deadline.cancel()
        return {"outcome": "verdict", "verdict": verdict.result, "waited_s": waited_s}
    return {"outcome": "timeout", "waited_s": waited_s}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def runner():
    with LocalOrchestrationRunner(bp, event_grace=None) as r:
        yield r


def token() -> str:
    tok = uuid.uuid4().hex
    GATES[tok] = threading.Event()
    GATE_ENTERED[tok] = threading.Event()
    return tok


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def wait_until_waiting(runner: LocalOrchestrationRunner, instance_id: str, name: str) -> None:
    wait_until(lambda: name in runner.get(instance_id).waiting_for)


def raised_events(history: list[dict]) -> list[tuple[str, object]]:
    return [(e["Name"], json.loads(e["Input"])) for e in history if e["EventType"] == EVENT_RAISED]


def types(history: list[dict]) -> list[int]:
    return [e["EventType"] for e in history]


# ---------------------------------------------------------------- waiting for one event


@pytest.mark.parametrize("schema", [0, 2])
def test_waiting_orchestrator_returns_the_event_payload(schema):
    with LocalOrchestrationRunner(bp, schema_version=schema, event_grace=None) as runner:
        client = LocalDurableClient(runner)
        instance_id = asyncio.run(client.start_new("waits_for_approval"))
        wait_until_waiting(runner, instance_id, "Approval")
        assert runner.get(instance_id).runtime_status == "Running"
        asyncio.run(client.raise_event(instance_id, "Approval", {"approved": True, "by": "ops"}))
        result = runner.wait(instance_id, timeout=5)
        status = asyncio.run(client.get_status(instance_id))
    assert result.status == "Completed", result.error
    assert result.output == {"approved": True, "by": "ops"}
    assert status.output == {"approved": True, "by": "ops"}
    # the event sits in an episode of its own, right after an OrchestratorStarted, as the host writes it
    history = result.history
    at = types(history).index(EVENT_RAISED)
    assert history[at - 1]["EventType"] == 12
    assert history[at]["Name"] == "Approval" and json.loads(history[at]["Input"]) == {"approved": True, "by": "ops"}
    assert history[at]["EventId"] == -1
    assert runner.get(instance_id).waiting_for == frozenset()


def test_event_raised_before_the_wait_is_buffered(runner):
    tok = token()
    instance_id = runner.start("holds_then_waits", {"token": tok, "name": "Approval", "waits": 1})
    assert GATE_ENTERED[tok].wait(5)
    runner.raise_event(instance_id, "Approval", "early yes")  # the orchestrator is inside `hold`
    wait_until(lambda: raised_events(runner.get(instance_id).history) == [("Approval", "early yes")])
    assert runner.get(instance_id).waiting_for == frozenset()  # it did not wait yet
    GATES[tok].set()
    result = runner.wait(instance_id, timeout=5)
    assert result.status == "Completed", result.error
    assert result.output == ["early yes"]
    history_types = types(result.history)
    assert history_types.index(EVENT_RAISED) < history_types.index(5)  # event first, then TaskCompleted


def test_several_events_of_one_name_are_delivered_in_order(runner):
    instance_id = runner.start("collects", 3)
    wait_until_waiting(runner, instance_id, "Item")
    for n in (1, 2, 3):
        runner.raise_event(instance_id, "Item", n)
    result = runner.wait(instance_id, timeout=5)
    assert result.status == "Completed", result.error
    assert result.output == [1, 2, 3]
    assert raised_events(result.history) == [("Item", 1), ("Item", 2), ("Item", 3)]


@pytest.mark.parametrize(
    ("early", "waits", "received", "warning"),
    [
        ([1, 2], 2, [2, 2], "keeps only the last one"),  # the first event is lost
        ([1], 2, [1, 1], "handed an early event out again"),  # one event satisfies every wait
    ],
)
def test_early_events_of_one_name_hit_the_sdk_limitation(runner, early, waits, received, warning):
    # Events raised before the orchestrator waits: the pinned SDK keeps one per name (the last)
    # and hands it to every later wait of that name (Azure/azure-functions-durable-python#507).
    # The host feeds the SDK the same history, so production does this too; the runner says so
    # with a warning. If an SDK upgrade fixes it, this test fails: then revisit
    # EventBufferingWarning and expect the events in order.
    tok = token()
    with pytest.warns(EventBufferingWarning) as caught:
        instance_id = runner.start("holds_then_waits", {"token": tok, "name": "Item", "waits": waits})
        assert GATE_ENTERED[tok].wait(5)
        for value in early:
            runner.raise_event(instance_id, "Item", value)
        wait_until(lambda: len(raised_events(runner.get(instance_id).history)) == len(early))
        GATES[tok].set()
        result = runner.wait(instance_id, timeout=5)
    assert result.status == "Completed", result.error
    assert result.output == received
    assert any(warning in str(w.message) for w in caught if w.category is EventBufferingWarning)


def test_a_wrong_event_name_does_not_satisfy_the_wait(runner):
    instance_id = runner.start("waits_for_approval")
    wait_until_waiting(runner, instance_id, "Approval")
    runner.raise_event(instance_id, "Rejection", "nope")
    runner.raise_event(instance_id, "approval", "wrong case")  # names are case-sensitive in the SDK
    record = runner.get(instance_id)
    # both events were written and replayed (a turn ended after them), and the orchestrator still waits
    wait_until(lambda: len(raised_events(record.history)) == 2 and record.history[-1]["EventType"] == 13)
    assert record.runtime_status == "Running"
    assert record.waiting_for == frozenset({"Approval"})
    runner.raise_event(instance_id, "Approval", "yes")
    result = runner.wait(instance_id, timeout=5)
    assert result.status == "Completed", result.error  # early events are not mistaken for non-determinism
    assert result.output == "yes"


# ---------------------------------------------------------------- task_any: event or deadline


def test_task_any_event_wins_and_the_timer_is_cancelled(runner):
    instance_id = runner.start("gate", 1)
    wait_until_waiting(runner, instance_id, "Verdict")
    time.sleep(0.3)  # event_grace=None: the one-hour deadline must not fire while we take our time
    runner.raise_event(instance_id, "Verdict", {"run": "r1", "passed": True})
    result = runner.wait(instance_id, timeout=5)
    assert result.status == "Completed", result.error
    assert result.output["outcome"] == "verdict"
    assert result.output["verdict"] == {"run": "r1", "passed": True}
    assert result.output["waited_s"] < 60  # the orchestration clock did not jump to the deadline
    history_types = types(result.history)
    assert history_types.count(TIMER_CREATED) == 1 and TIMER_FIRED not in history_types


def test_task_any_timer_wins_when_no_event_comes():
    with LocalOrchestrationRunner(bp, event_grace=0) as runner:
        started = time.monotonic()
        # a five-hour deadline, fired at once: nothing else can progress
        result = runner.wait(runner.start("gate", 5), timeout=5)
        elapsed = time.monotonic() - started
    assert result.status == "Completed", result.error
    assert result.output["outcome"] == "timeout"
    assert result.output["waited_s"] >= 5 * 3600
    assert elapsed < 2
    fired = [e for e in result.history if e["EventType"] == TIMER_FIRED]
    assert len(fired) == 1 and EVENT_RAISED not in types(result.history)


def test_event_grace_bounds_how_long_a_deadline_waits_for_an_event():
    with LocalOrchestrationRunner(bp, event_grace=0.5) as runner:
        started = time.monotonic()
        result = runner.wait(runner.start("gate", 24), timeout=10)
        elapsed = time.monotonic() - started
    assert result.output["outcome"] == "timeout"
    assert result.output["waited_s"] >= 24 * 3600
    assert 0.5 <= elapsed < 5


def test_timer_wins_when_the_clock_is_advanced_past_the_deadline(runner):
    instance_id = runner.start("gate", 2)
    wait_until_waiting(runner, instance_id, "Verdict")
    time.sleep(0.3)
    assert runner.get(instance_id).runtime_status == "Running"  # no early firing with event_grace=None
    before = runner.clock.now()
    after = runner.advance_clock(timedelta(hours=3))
    assert after - before >= timedelta(hours=3)
    result = runner.wait(instance_id, timeout=5)
    assert result.output["outcome"] == "timeout"
    assert result.output["waited_s"] >= 2 * 3600
    # a verdict after the deadline finds the instance gone, as on the host (410)
    with pytest.raises(InstanceNotRunning, match="is gone"):
        runner.raise_event(instance_id, "Verdict", {"run": "late"})


# ---------------------------------------------------------------- errors and other instances


def test_raise_event_on_unknown_or_finished_instances_fails_like_the_client(runner):
    client = LocalDurableClient(runner)
    with pytest.raises(KeyError):
        runner.raise_event("nobody", "Approval", 1)
    with pytest.raises(Exception, match=r"^No instance with ID nobody found\.$") as missing:
        asyncio.run(client.raise_event("nobody", "Approval", 1))
    assert type(missing.value) is Exception  # what the SDK client raises for the host's 404
    instance_id = runner.start("waits_for_approval")
    wait_until_waiting(runner, instance_id, "Approval")
    with pytest.raises(ValueError, match="non-empty"):
        asyncio.run(client.raise_event(instance_id, "", 1))
    with pytest.raises(TypeError):
        asyncio.run(client.raise_event(instance_id, "Approval", {1, 2}))  # not JSON, as json.dumps says
    asyncio.run(client.raise_event(instance_id, "Approval", "ok"))
    assert runner.wait(instance_id, timeout=5).output == "ok"
    with pytest.raises(InstanceNotRunning):
        runner.raise_event(instance_id, "Approval", "again")
    gone_message = f"^Instance with ID {instance_id} is gone: either completed or failed$"
    with pytest.raises(Exception, match=gone_message) as gone:
        asyncio.run(client.raise_event(instance_id, "Approval", "again"))
    assert type(gone.value) is Exception  # the SDK client's message for the host's 410


def test_terminate_ends_a_wait_for_an_event(runner):
    instance_id = runner.start("waits_for_approval")
    wait_until_waiting(runner, instance_id, "Approval")
    started = time.monotonic()
    assert runner.terminate(instance_id, "no verdict needed")
    result = runner.wait(instance_id, timeout=5)
    assert result.status == "Terminated" and result.output == "no verdict needed"
    assert time.monotonic() - started < 1


def test_events_reach_the_right_instance_only(runner):
    first = runner.start("waits_for_approval")
    second = runner.start("waits_for_approval")
    wait_until_waiting(runner, first, "Approval")
    wait_until_waiting(runner, second, "Approval")
    runner.raise_event(second, "Approval", "for the second")
    assert runner.wait(second, timeout=5).output == "for the second"
    assert runner.get(first).runtime_status == "Running"
    runner.raise_event(first, "Approval", "for the first")
    assert runner.wait(first, timeout=5).output == "for the first"


def test_event_timestamps_follow_the_orchestration_clock(runner):
    instance_id = runner.start("waits_for_approval")
    wait_until_waiting(runner, instance_id, "Approval")
    runner.advance_clock(timedelta(days=1))
    runner.raise_event(instance_id, "Approval", None)
    result = runner.wait(instance_id, timeout=5)
    assert result.output is None
    event = next(e for e in result.history if e["EventType"] == EVENT_RAISED)
    raised_at = datetime.strptime(event["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    started_at = datetime.strptime(result.history[0]["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert raised_at - started_at >= timedelta(days=1)
