"""The local runner drives the real azure-functions-durable replay engine like the host does.

The orchestrators, activities and the HTTP starter are defined here, on a ``df.Blueprint``, so the
tests depend on nothing in orchestrations/ or api/. Activities that need per-test state key it by
a token passed in their input.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from runner import (
    InstanceAlreadyExists,
    LocalDurableClient,
    LocalOrchestrationRunner,
    UnsupportedDurableFeature,
    call_client_function,
)

bp = df.Blueprint()

# Per-token state shared between a test and the activities it runs.
CALLS: dict[str, int] = defaultdict(int)
SPANS: dict[str, list[tuple[float, float]]] = defaultdict(list)
EVENTS: dict[str, threading.Event] = {}
SEEN: dict[str, list] = defaultdict(list)
_lock = threading.Lock()


# ---------------------------------------------------------------- activities


@bp.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"Hello {name}"


@bp.activity_trigger(input_name="payload")
def slow_square(payload: dict) -> int:
    start = time.monotonic()
    time.sleep(0.2)
    with _lock:
        SPANS[payload["token"]].append((start, time.monotonic()))
    return payload["n"] * payload["n"]


@bp.activity_trigger(input_name="payload")
def explode(payload: dict) -> None:
    raise ValueError(f"boom: {payload['what']}")


@bp.activity_trigger(input_name="payload")
def flaky(payload: dict) -> str:
    with _lock:
        CALLS[payload["token"]] += 1
        attempt = CALLS[payload["token"]]
    if attempt <= payload["failures"]:
        raise ConnectionError(f"transient fault #{attempt}")
    return f"ok after {attempt}"


@bp.activity_trigger(input_name="token")
def wait_for_release(token: str) -> str:
    if not EVENTS[token].wait(10):
        raise TimeoutError("never released")
    return "released"


@bp.activity_trigger(input_name="payload")
def not_json(payload: dict) -> set:
    return {1, 2}


# ---------------------------------------------------------------- orchestrators


@bp.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):
    names = context.get_input()
    out = []
    for name in names:
        out.append((yield context.call_activity("greet", name)))
    return out


@bp.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    tasks = [context.call_activity("slow_square", {"token": payload["token"], "n": n}) for n in range(payload["count"])]
    results = yield context.task_all(tasks)
    return sum(results)


@bp.orchestration_trigger(context_name="context")
def catches_failure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("explode", {"what": "caught"})
    except Exception as exc:
        return {"caught": str(exc)}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def lets_failure_escape(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "first")
    yield context.call_activity("explode", {"what": "uncaught"})
    return "unreachable"


@bp.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=60_000, max_number_of_attempts=payload["attempts"])
    start = context.current_utc_datetime
    result = yield context.call_activity_with_retry("flaky", options, payload)
    return {"result": result, "waited_s": (context.current_utc_datetime - start).total_seconds()}


@bp.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    minutes = context.get_input()
    before = context.current_utc_datetime
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=minutes))
    after = context.current_utc_datetime
    return {"before": before.isoformat(), "after": after.isoformat()}


@bp.orchestration_trigger(context_name="context")
def uuids(context: df.DurableOrchestrationContext):
    first = context.new_uuid()
    SEEN[context.get_input()].append(first)
    yield context.call_activity("greet", "x")
    second = context.new_uuid()
    yield context.call_activity("greet", "y")
    return [first, second]


@bp.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    if payload.get("fail"):
        raise RuntimeError(f"child refuses {payload['n']}")
    doubled = yield context.call_activity("greet", str(payload["n"] * 2))
    return {"child": context.instance_id, "parent": context.parent_instance_id, "greeting": doubled}


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    results = yield context.task_all(
        [context.call_sub_orchestrator("child", {"n": n, "fail": payload.get("fail", False)}) for n in range(3)]
    )
    return results


@bp.orchestration_trigger(context_name="context")
def parent_catches(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("child", {"n": 7, "fail": True}, instance_id="fixed-child")
    except Exception as exc:
        return str(exc)
    return None


@bp.orchestration_trigger(context_name="context")
def reports_progress(context: df.DurableOrchestrationContext):
    token = context.get_input()
    context.set_custom_status({"stage": "waiting", "percentage": 10})
    yield context.call_activity("wait_for_release", token)
    context.set_custom_status({"stage": "done", "percentage": 100})
    return "finished"


@bp.orchestration_trigger(context_name="context")
def generations(context: df.DurableOrchestrationContext):
    state = context.get_input()
    greeting = yield context.call_activity("greet", str(state["n"]))
    state = {"n": state["n"] + 1, "seen": [*state["seen"], greeting]}
    if state["n"] < 3:
        context.continue_as_new(state)
        return None
    return state


@bp.orchestration_trigger(context_name="context")
def waits_for_event(context: df.DurableOrchestrationContext):
    approval = yield context.wait_for_external_event("Approval")
    return approval


@bp.orchestration_trigger(context_name="context")
def calls_entity(context: df.DurableOrchestrationContext):
    return (yield context.call_entity(df.EntityId("counter", "one"), "add", 1))


@bp.orchestration_trigger(context_name="context")
def returns_set(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("not_json", {}))


@bp.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    token = context.get_input()
    with _lock:
        CALLS[token] += 1
        turn = CALLS[token]
    # Replays must schedule the same activities; this one does not.
    yield context.call_activity("greet" if turn == 1 else "flaky", {"token": token, "failures": 0})
    yield context.call_activity("greet", "second")
    return "done"


# ---------------------------------------------------------------- HTTP starter


@bp.route(route="orchestrators/{name}", methods=[func.HttpMethod.POST])
@bp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], client_input=req.get_json())
    return client.create_check_status_response(req, instance_id)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def runner():
    with LocalOrchestrationRunner(bp) as r:
        yield r


def token() -> str:
    return uuid.uuid4().hex


def event_types(result) -> list[int]:
    return [e["EventType"] for e in result.history]


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("schema", [0, 1, 2])
def test_sequential_activities_and_history_shape(schema):
    with LocalOrchestrationRunner(bp, schema_version=schema) as runner:
        result = runner.run("sequence", ["Ada", "Grace", "Linus"])
    assert result.status == "Completed", result.error
    assert result.output == ["Hello Ada", "Hello Grace", "Hello Linus"]
    assert result.activity_calls == 3
    history = result.history
    assert [history[0]["EventType"], history[1]["EventType"]] == [12, 0]
    assert history[1]["Version"] == "" and json.loads(history[1]["Input"]) == ["Ada", "Grace", "Linus"]
    datetime.strptime(history[0]["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    scheduled = [e for e in history if e["EventType"] == 4]
    completed = [e for e in history if e["EventType"] == 5]
    # one counter in yield order: ids 0, 1, 2, and each completion names its TaskScheduled
    assert [e["EventId"] for e in scheduled] == [0, 1, 2]
    assert [e["TaskScheduledId"] for e in completed] == [0, 1, 2]
    assert [json.loads(e["Result"]) for e in completed] == result.output
    assert event_types(result).count(12) == 4  # the first turn and one per completion


def test_decorated_raw_and_named_orchestrators_are_the_same_function():
    raw = sequence.build().get_user_function().orchestrator_function
    with LocalOrchestrationRunner(activities={"greet": lambda name: f"Hi {name}"}) as runner:
        assert runner.run(raw, ["a"]).output == ["Hi a"]
        assert runner.run(sequence, ["b"]).output == ["Hi b"]
        assert runner.run("sequence", ["c"]).output == ["Hi c"]


def test_reading_an_app_leaves_get_functions_usable():
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    with LocalOrchestrationRunner(app) as runner:
        assert {"sequence", "parent", "child"} <= set(runner.registry.orchestrators)
        assert {"greet", "flaky"} <= set(runner.registry.activities)
        assert "http_start" in runner.registry.clients
        assert runner.run("sequence", ["app"]).output == ["Hello app"]
    names = {f.get_function_name() for f in app.get_functions()}  # the one allowed call still works
    assert {"sequence", "greet", "http_start"} <= names


@pytest.mark.parametrize("schema", [0, 2])
def test_fan_out_runs_activities_concurrently_in_a_bounded_pool(schema):
    tok = token()
    with LocalOrchestrationRunner(bp, schema_version=schema) as runner:
        started = time.monotonic()
        result = runner.run("fan_out", {"token": tok, "count": 20})
        elapsed = time.monotonic() - started
    assert result.status == "Completed", result.error
    assert result.output == sum(n * n for n in range(20))
    spans = SPANS[tok]
    assert len(spans) == 20
    # peak number of activities running at the same moment
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 8
    assert elapsed < 20 * 0.2 / 2  # far less than one after the other
    scheduled_ids = sorted(e["EventId"] for e in result.history if e["EventType"] == 4)
    assert scheduled_ids == list(range(20))


def test_activity_failure_caught_by_the_orchestrator(runner):
    result = runner.run("catches_failure")
    assert result.status == "Completed"
    message = result.output["caught"]
    assert "Activity function 'explode' failed: ValueError: boom: caught" in message
    failed = [e for e in result.history if e["EventType"] == 6]
    assert len(failed) == 1 and failed[0]["TaskScheduledId"] == 0 and "boom: caught" in failed[0]["Reason"]


def test_activity_failure_uncaught_fails_the_orchestration(runner):
    result = runner.run("lets_failure_escape")
    assert result.status == "Failed"
    assert "boom: uncaught" in result.error
    assert result.output.startswith("Orchestrator function 'lets_failure_escape' failed:")
    assert runner.get(result.instance_id).runtime_status == "Failed"


@pytest.mark.parametrize("schema", [0, 1, 2])
def test_retry_succeeds_on_the_third_attempt(schema):
    tok = token()
    with LocalOrchestrationRunner(bp, schema_version=schema) as runner:
        started = time.monotonic()
        result = runner.run("with_retry", {"token": tok, "failures": 2, "attempts": 5})
    assert result.status == "Completed", result.error
    assert CALLS[tok] == 3
    assert result.output["result"] == "ok after 3"
    # two one-minute retry timers on the orchestration clock, none on the wall clock
    assert result.output["waited_s"] >= 120
    assert time.monotonic() - started < 5
    types = event_types(result)
    assert types.count(4) == 3 and types.count(6) == 2 and types.count(10) == 2 and types.count(11) == 2


def test_retry_gives_up_after_max_attempts(runner):
    tok = token()
    result = runner.run("with_retry", {"token": tok, "failures": 99, "attempts": 3})
    assert result.status == "Failed"
    assert CALLS[tok] == 3
    assert "transient fault #3" in result.error


def test_durable_timer_advances_the_clock_without_sleeping(runner):
    started = time.monotonic()
    result = runner.run("sleeper", 5)
    assert result.status == "Completed", result.error
    assert time.monotonic() - started < 2
    before = datetime.fromisoformat(result.output["before"])
    after = datetime.fromisoformat(result.output["after"])
    assert after - before >= timedelta(minutes=5)
    fired = [e for e in result.history if e["EventType"] == 11]
    assert len(fired) == 1 and fired[0]["TimerId"] == 0


def test_long_timer_is_split_by_the_sdk(runner):
    result = runner.run("sleeper", 10 * 24 * 60)  # ten days > maximumShortTimerDuration (6 days)
    assert result.status == "Completed", result.error
    after = datetime.fromisoformat(result.output["after"])
    assert after - datetime.fromisoformat(result.output["before"]) >= timedelta(days=10)
    # 3-day intervals while more than 6 days remain: fire at +3d, +6d, then the last 4 days at +10d
    created = [datetime.strptime(e["FireAt"], "%Y-%m-%dT%H:%M:%S.%fZ") for e in result.history if e["EventType"] == 10]
    steps = [round((b - a).total_seconds() / 86400) for a, b in itertools.pairwise(created)]
    assert steps == [3, 4]
    assert event_types(result).count(11) == 3


def test_real_time_mode_sleeps_for_timers():
    with LocalOrchestrationRunner(bp, real_time=True) as runner:
        started = time.monotonic()
        result = runner.run("sleeper", 0.01)  # 0.6 s
    assert result.status == "Completed"
    assert time.monotonic() - started >= 0.5


def test_new_uuid_is_deterministic_across_replays(runner):
    tok = token()
    result = runner.run("uuids", tok)
    first, second = result.output
    assert SEEN[tok] == [first] * 3  # three turns, the same value each time
    assert first != second
    other = runner.run("uuids", token())
    assert other.output[0] != first  # depends on the instance id


def test_sub_orchestrations_return_values(runner):
    result = runner.run("parent", {}, instance_id="p1")
    assert result.status == "Completed", result.error
    assert [r["greeting"] for r in result.output] == ["Hello 0", "Hello 2", "Hello 4"]
    assert all(r["parent"] == "p1" for r in result.output)
    children = {r["child"] for r in result.output}
    assert len(children) == 3
    for child_id in children:
        assert runner.get(child_id).runtime_status == "Completed"
    types = event_types(result)
    assert types.count(7) == 3 and types.count(8) == 3


def test_failing_sub_orchestration(runner):
    caught = runner.run("parent_catches")
    assert caught.status == "Completed"
    assert "Orchestrator function 'child' failed: child refuses 7" in caught.output
    assert runner.get("fixed-child").runtime_status == "Failed"
    uncaught = runner.run("parent", {"fail": True})
    assert uncaught.status == "Failed"
    assert "child refuses" in uncaught.error


def test_custom_status_is_seen_while_running():
    tok = token()
    EVENTS[tok] = threading.Event()
    transitions: list[tuple[str, object]] = []
    with LocalOrchestrationRunner(bp, on_status=lambda iid, s: transitions.append((iid, s))) as runner:
        client = LocalDurableClient(runner)
        instance_id = asyncio.run(client.start_new("reports_progress", client_input=tok))
        deadline = time.monotonic() + 5
        status = asyncio.run(client.get_status(instance_id))
        while status.custom_status is None and time.monotonic() < deadline:
            time.sleep(0.01)
            status = asyncio.run(client.get_status(instance_id))
        assert status.runtime_status is OrchestrationRuntimeStatus.Running
        assert status.custom_status == {"stage": "waiting", "percentage": 10}
        assert status.name == "reports_progress" and status.instance_id == instance_id
        EVENTS[tok].set()
        runner.wait(instance_id, timeout=5)
        final = asyncio.run(client.get_status(instance_id, show_input=True))
    assert final.runtime_status is OrchestrationRuntimeStatus.Completed
    assert final.output == "finished" and final.input_ == tok
    assert final.custom_status == {"stage": "done", "percentage": 100}
    assert final.created_time <= final.last_updated_time
    assert transitions == [
        (instance_id, {"stage": "waiting", "percentage": 10}),
        (instance_id, {"stage": "done", "percentage": 100}),
    ]


def test_continue_as_new_runs_three_generations(runner):
    result = runner.run("generations", {"n": 0, "seen": []})
    assert result.status == "Completed", result.error
    assert result.generations == 3
    assert result.output == {"n": 3, "seen": ["Hello 0", "Hello 1", "Hello 2"]}
    # each generation starts from a fresh history
    assert event_types(result).count(0) == 1
    assert json.loads(result.history[1]["Input"]) == {"n": 2, "seen": ["Hello 0", "Hello 1"]}


def test_http_starter_answers_202_with_location(runner):
    client = LocalDurableClient(runner)
    request = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/orchestrators/sequence",
        body=json.dumps(["HTTP"]).encode(),
        route_params={"name": "sequence"},
        headers={"Content-Type": "application/json"},
    )
    response = call_client_function(http_start, client=client, req=request)
    assert isinstance(response, func.HttpResponse)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    instance_id = body["id"]
    assert response.headers["Location"] == body["statusQueryGetUri"]
    assert f"/runtime/webhooks/durabletask/instances/{instance_id}?" in response.headers["Location"]
    assert runner.wait(instance_id, timeout=5).output == ["Hello HTTP"]
    status = asyncio.run(client.get_status(instance_id))
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed


def test_client_start_rules(runner):
    tok = token()
    EVENTS[tok] = threading.Event()
    client = LocalDurableClient(runner)
    assert not asyncio.run(client.get_status("nobody"))  # the SDK's empty status for a 404
    with pytest.raises(Exception, match="doesn't exist"):
        asyncio.run(client.start_new("no_such_orchestrator"))
    asyncio.run(client.start_new("reports_progress", instance_id="single", client_input=tok))
    with pytest.raises(InstanceAlreadyExists, match="already exists"):
        asyncio.run(client.start_new("reports_progress", instance_id="single", client_input=tok))
    EVENTS[tok].set()
    runner.wait("single", timeout=5)
    # a finished instance may be replaced
    waiting = LocalDurableClient(runner, wait=True)
    asyncio.run(waiting.start_new("sequence", instance_id="single", client_input=["again"]))
    assert asyncio.run(client.get_status("single")).output == ["Hello again"]
    assert [s.instance_id for s in asyncio.run(client.get_status_all())] == ["single"]
    assert asyncio.run(client.purge_instance_history("single")).instances_deleted == 1
    assert not asyncio.run(client.get_status("single"))


def test_terminate_stops_a_running_instance(runner):
    tok = token()
    EVENTS[tok] = threading.Event()
    client = LocalDurableClient(runner)
    instance_id = asyncio.run(client.start_new("reports_progress", client_input=tok))
    asyncio.run(client.terminate(instance_id, "operator said so"))
    result = runner.wait(instance_id, timeout=5)
    EVENTS[tok].set()
    assert result.status == "Terminated" and result.output == "operator said so"
    status = asyncio.run(client.get_status(instance_id))
    assert status.runtime_status is OrchestrationRuntimeStatus.Terminated
    with pytest.raises(Exception, match="No instance"):
        asyncio.run(client.terminate("nobody", "x"))


def test_non_json_activity_output_fails_loudly(runner):
    result = runner.run("returns_set")
    assert result.status == "Failed"
    assert "json serializable" in result.error


def test_external_event_reaches_a_waiting_orchestrator(runner):
    # More in tests/test_runner_events.py; this one keeps the starter-side path covered here.
    client = LocalDurableClient(runner)
    instance_id = asyncio.run(client.start_new("waits_for_event"))
    deadline = time.monotonic() + 5
    while "Approval" not in runner.get(instance_id).waiting_for and time.monotonic() < deadline:
        time.sleep(0.01)
    asyncio.run(client.raise_event(instance_id, "Approval", {"by": "ops"}))
    assert runner.wait(instance_id, timeout=5).output == {"by": "ops"}


def test_unsupported_durable_apis_are_refused_clearly(runner):
    with pytest.raises(UnsupportedDurableFeature, match="CallEntityAction"):
        runner.run("calls_entity")


def test_non_deterministic_orchestrator_is_detected(runner):
    tok = token()
    result = runner.run("nondeterministic", tok)
    assert result.status == "Failed"
    assert "Non-deterministic" in result.error
