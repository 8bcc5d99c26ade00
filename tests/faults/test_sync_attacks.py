"""Attacks on the sync features: the later-verdict callback, rate-limit hold-offs, an export
pipeline named as a target, time-bounded tag patterns and the bounds of a sync's stored state.

The callback is called as the worker calls it (a real ``func.HttpRequest``, sync definitions on the
session's Azurite) with a recording durable client standing in for the orchestration's status, so
each case proves what was (not) raised. Everything else runs with no service, or with Azurite only,
and a socket guard that lets nothing but loopback be reached."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from ferry.errors import RegistryError, UsageError
from ferry.patterns import TagPattern
from ferry.registry.ratelimit import MAX_HOLD, hold_off
from ferry.registry.retry import RetryBudget, RetryPolicy, parse_retry_after
from ferry.sync.definition import parse_sync
from ferry.sync.filters import TagFilter
from ferry.sync.state import MAX_REASON_CHARS, MAX_REASONS, StoredSyncState, TagState
from ferry.sync.validator import MAX_REASON
from orchestrations import sync as sync_orchestration
from runner.client import acall_client_function
from tests.helpers import app_functions

pytestmark = pytest.mark.attack
FUNCTIONS = app_functions()
KEY = "FUNCTIONKEYsyncattacks"
RUN = "20260101120000"
GOOD = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
SAS = "https://acct.blob.core.windows.net/c/x?sv=2024-01-01&sig=SECRETSASSIGNATURE"


# --------------------------------------------------------------------------- helpers


class RecordingClient:
    """The durable client of the callback: statuses by instance id, and every event raised."""

    def __init__(self, statuses: dict[str, Any]) -> None:
        self.statuses = statuses
        self.raised: list[tuple[str, str, Any]] = []

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        return self.statuses.get(instance_id)

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None, *args: Any,
                          **kwargs: Any) -> None:
        self.raised.append((instance_id, event_name, event_data))


def awaiting_status(run: str, *awaited: tuple[str, str], runtime: str = "Running") -> Any:
    """An instance's status as the orchestration sets it while it awaits ``(digest, policy)`` verdicts."""
    custom = {"stage": "sync", "percentage": 50, "step": sync_orchestration.AWAITING, "run": run,
              "awaiting": [{"tag": f"v{i}", "digest": d, "policy": p} for i, (d, p) in enumerate(awaited)]}
    now = datetime.now(UTC)
    return SimpleNamespace(runtime_status=runtime, custom_status=custom, output=None, created_time=now,
                           last_updated_time=now)


def call(name: str, method: str, path: str, body: Any = None, *, client: Any = None,
         params: dict[str, str] | None = None, raw: bytes | None = None) -> func.HttpResponse:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    req = func.HttpRequest(method=method, url=f"http://localhost:7071/api/{path}?code={KEY}", body=data,
                           route_params=params or {}, headers={"Content-Type": "application/json"})
    fn = FUNCTIONS[name]
    if client is not None:
        return asyncio.run(acall_client_function(fn, client=client, req=req))
    result = fn.get_user_function()(req)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def sync_body(**target: Any) -> dict[str, Any]:
    return {"properties": {
        "source": {"registryUri": "src.example.com", "repository": "up/app"},
        "tags": {"include": ["v.*"]},
        "target": target or {"registryUri": "target.example.com:5443", "repository": "base/app"},
        "policies": [{"kind": "external", "id": "qa", "url": "https://src.example.com/validate",
                      "timeoutSeconds": 600}]}}


def verdict(client: RecordingClient, name: str, run: str, body: Any = None, raw: bytes | None = None
            ) -> tuple[int, dict[str, Any], bytes]:
    resp = call("sync_verdict", "POST", f"syncs/{name}/runs/{run}/verdict", body, client=client, raw=raw,
                params={"name": name, "run": run})
    text = resp.get_body() or b"{}"
    return resp.status_code, json.loads(text), text


@pytest.fixture
def two_syncs(app_env, uname) -> Iterator[tuple[str, str]]:
    names = (f"{uname}a", f"{uname}b")
    for name in names:
        assert call("sync_put", "PUT", f"syncs/{name}", sync_body(), params={"name": name}).status_code in (200, 201)
    yield names
    for name in names:
        call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Connections to anything but loopback fail (and are recorded): Azurite stays reachable."""
    tried: list[Any] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            tried.append(address)
            raise RuntimeError(f"connection to {address!r} in a test that may reach loopback only")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


# --------------------------------------------------------------------------- the verdict callback


def test_a_verdict_for_another_syncs_run_or_digest_raises_nothing(two_syncs):
    mine, theirs = two_syncs
    client = RecordingClient({f"sync-{theirs}": awaiting_status(RUN, (GOOD, "qa"))})
    forged = [
        (mine, RUN, {"digest": GOOD, "verdict": "approve"}),  # their run and digest, through my sync
        (theirs, "20260101120001", {"digest": GOOD, "verdict": "approve"}),  # their digest, another run
        (theirs, RUN, {"digest": OTHER, "verdict": "approve"}),  # their run, a digest nobody awaits
        (theirs, RUN, {"digest": GOOD, "verdict": "approve", "policy": "QA"}),  # a policy that differs in case
        (theirs, RUN, {"digest": GOOD, "verdict": "approve", "policy": ""}),
        (theirs, RUN, {"digest": GOOD.upper().replace("SHA256", "sha256"), "verdict": "approve"}),
        (theirs, RUN, {"digest": "sha512:" + "a" * 128, "verdict": "approve"}),
    ]
    for name, run, body in forged:
        code, answer, _ = verdict(client, name, run, body)
        assert code in (400, 404), (name, run, body, answer)
    assert client.raised == []
    assert verdict(client, theirs, RUN, {"digest": GOOD, "verdict": "approve"})[0] == 202  # the genuine one
    assert [(i, d) for i, _, d in client.raised] == [(f"sync-{theirs}", {"verdict": "approve", "reason": None})]


@pytest.mark.parametrize("runtime", ["Completed", "Failed", "Terminated", None])
def test_a_replayed_verdict_after_the_run_ended_raises_nothing(two_syncs, runtime):
    name = two_syncs[0]
    statuses = {} if runtime is None else {f"sync-{name}": awaiting_status(RUN, (GOOD, "qa"), runtime=runtime)}
    client = RecordingClient(statuses)
    code, answer, _ = verdict(client, name, RUN, {"digest": GOOD, "verdict": "approve"})
    assert (code, "no tick of this sync is running" in answer["error"]["message"]) == (404, True), answer
    assert client.raised == []


@pytest.mark.parametrize("run", ["2026010112000", "202601011200000", "2026010112000a",
                                 "\uff12\uff10\uff12\uff16" + "\uff10" * 10, "20260101120000\n",
                                 " 20260101120000", "../../20260101120000", "", "-1" * 7])
def test_a_run_id_that_is_not_14_digits_is_refused(two_syncs, run):
    client = RecordingClient({f"sync-{two_syncs[0]}": awaiting_status(run, (GOOD, "qa"))})
    code, answer, _ = verdict(client, two_syncs[0], run, {"digest": GOOD, "verdict": "approve"})
    assert (code, "run must be a run id" in answer["error"]["message"]) == (400, True), answer
    assert client.raised == []


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "ab", "x" * 60, "sync\n", "rün-sync", "sync-%2e%2e"])
def test_a_name_that_is_not_a_sync_name_is_404(app_env, name):
    client = RecordingClient({f"sync-{name.lower()}": awaiting_status(RUN, (GOOD, "qa"))})
    code, answer, _ = verdict(client, name, RUN, {"digest": GOOD, "verdict": "approve"})
    assert code == 404, answer
    assert client.raised == []


@pytest.mark.parametrize(("raw", "said"), [
    (b"[]", "body"), (b'"approve"', "body"), (b"42", "body"), (b"null", "body"), (b"", "body"),
    (b"{", "not valid JSON"), (b"[" * 100_000 + b"]" * 100_000, "body"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "x": 1}).encode(), "unknown field"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "__proto__": {}}).encode(), "unknown field"),
    (json.dumps({"digest": GOOD, "verdict": "Approve"}).encode(), "body.verdict"),
    (json.dumps({"digest": GOOD, "verdict": "pending"}).encode(), "body.verdict"),
    (json.dumps({"digest": GOOD, "verdict": ["approve"]}).encode(), "body.verdict"),
    (json.dumps({"digest": GOOD}).encode(), "body.verdict"),
    (json.dumps({"verdict": "approve"}).encode(), "body.digest"),
    (json.dumps({"digest": "sha256:" + "A" * 64, "verdict": "approve"}).encode(), "body.digest"),
    (json.dumps({"digest": GOOD + "\n", "verdict": "approve"}).encode(), "body.digest"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "reason": 5}).encode(), "body.reason"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "reason": {"a": 1}}).encode(), "body.reason"),
    (json.dumps({"digest": GOOD, "verdict": "reject", "reason": "x" * 2001}).encode(), "body.reason"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "policy": 7}).encode(), "body.policy"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "policy": ["qa"]}).encode(), "body.policy"),
    (json.dumps({"digest": GOOD, "verdict": "approve", "pad": "x" * (2 * 1024 * 1024)}).encode(), "larger"),
])
def test_a_body_that_is_not_a_verdict_is_400_and_raises_nothing(two_syncs, raw, said):
    client = RecordingClient({f"sync-{two_syncs[0]}": awaiting_status(RUN, (GOOD, "qa"))})
    code, answer, text = verdict(client, two_syncs[0], RUN, raw=raw)
    assert (code, said in answer["error"]["message"]) == (400, True), answer
    assert len(text) < 1000 and client.raised == []


def test_a_hostile_reason_is_never_echoed(two_syncs):
    name = two_syncs[0]
    client = RecordingClient({f"sync-{name}": awaiting_status(RUN, (GOOD, "qa"))})
    reason = "\x1b[2J\x07bad " + SAS + " password=hunter2 " + "\u202e" * 100
    code, answer, text = verdict(client, name, RUN, {"digest": GOOD, "verdict": "reject", "reason": reason})
    assert code == 202 and answer == {"run": RUN, "digest": GOOD, "policy": "qa", "verdict": "reject"}
    assert b"SECRETSAS" not in text and b"hunter2" not in text


def test_several_policies_on_one_digest_must_be_named_and_each_gets_its_own_event(two_syncs):
    name = two_syncs[0]
    client = RecordingClient({f"sync-{name}": awaiting_status(RUN, (GOOD, "qa"), (GOOD, "sec"), (OTHER, "qa"))})
    code, answer, _ = verdict(client, name, RUN, {"digest": GOOD, "verdict": "approve"})
    assert (code, "body.policy: required" in answer["error"]["message"]) == (400, True), answer
    for policy, digest in (("qa", GOOD), ("sec", GOOD), ("qa", OTHER)):
        assert verdict(client, name, RUN, {"digest": digest, "verdict": "approve", "policy": policy})[0] == 202
    names = [event for _, event, _ in client.raised]
    assert len(set(names)) == 3, names


# --------------------------------------------------------------------------- rate-limit hold-offs


@pytest.mark.parametrize(("headers", "expected"), [
    ({"ratelimit-remaining": "nan"}, None),
    ({"ratelimit-remaining": "inf"}, None),
    ({"ratelimit-remaining": "-inf", "ratelimit-reset": "5"}, None),  # not a number of requests: no hold
    ({"ratelimit-remaining": "1e400"}, None),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "1e400"}, 60.0),  # an infinite reset is no reset
    ({"ratelimit-remaining": "0", "ratelimit-reset": "nan"}, 60.0),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "-5"}, 60.0),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "1e300"}, MAX_HOLD),
    ({"ratelimit-remaining": "0", "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, MAX_HOLD),
    ({"ratelimit-remaining": "0", "retry-after": "Mon, 01 Jan 99999 00:00:00 GMT"}, 60.0),
    ({"ratelimit-remaining": "0;w=1e999"}, 60.0),
    ({"ratelimit-remaining": "0;w=-3"}, 60.0),
    ({"ratelimit-remaining": "0;w=" + "9" * 5000}, 60.0),  # past float: infinite, so no window
    ({"ratelimit-remaining": "0, 0", "ratelimit-reset": "30, 99999"}, 30.0),  # repeated headers, joined
    ({"ratelimit-remaining": "5, 0"}, None),
    ({"ratelimit-remaining": "0" * 100_000}, 60.0),
    ({"ratelimit-remaining": "\x00"}, None),
])
def test_hostile_rate_limit_headers_hold_off_a_bounded_finite_time(no_network, headers, expected):
    got = hold_off(headers)
    assert got == expected and (got is None or (math.isfinite(got) and 0 <= got <= MAX_HOLD))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e400", "", " ", "0x10", "1_000", "Fri, 31 Feb 2026",
                                   "\x00", "9" * 10_000])
def test_hostile_retry_after_values_are_finite_or_none(no_network, value):
    got = parse_retry_after(value)
    assert got is None or (math.isfinite(got) and got >= 0), (value, got)


@pytest.mark.parametrize("retry_after", [61.0, 3600.0, 1e300, MAX_HOLD * 100])
def test_a_retry_after_past_the_budget_ends_the_operation_without_sleeping(no_network, monkeypatch, retry_after):
    slept: list[float] = []
    monkeypatch.setattr("ferry.registry.retry.time.sleep", slept.append)
    budget = RetryBudget(RetryPolicy(), "GET tags")
    error = RegistryError("429 too many requests", status=429)
    error.transient, error.retry_after = True, retry_after
    with pytest.raises(RegistryError) as raised:
        budget.backoff(error)
    assert slept == [] and raised.value.transient is False and raised.value.retry_after == retry_after


def test_a_registry_that_always_says_hold_ends_the_run_after_max_holds_durable_timers(no_network):
    """The real orchestrator, driven by hand: every tick says hold off for ever longer."""
    timers: list[float] = []

    class Context:
        current_utc_datetime = datetime(2026, 1, 1, tzinfo=UTC)

        def get_input(self) -> dict[str, Any]:
            return {"name": "always", "maxHolds": 10 ** 9}

        def set_custom_status(self, status: Any) -> None:
            pass

        def call_activity_with_retry(self, name: str, retry: Any, payload: Any) -> str:
            return "tick"

        def create_timer(self, when: datetime) -> str:
            timers.append((when - self.current_utc_datetime).total_seconds())
            self.current_utc_datetime = when
            return "timer"

    raw = sync_orchestration.sync_run._function.get_user_function().orchestrator_function
    generator = raw(Context())
    holds = iter([1e300, -5.0, 0.0, 7 * 24 * 3600.0] * 100)
    task = next(generator)
    with pytest.raises(StopIteration) as done:
        for _ in range(100):
            task = generator.send({"tags": [], "retry_after": next(holds)} if task == "tick" else None)
    assert len(timers) == sync_orchestration.MAX_HOLDS
    assert all(1.0 <= t <= sync_orchestration.MAX_HOLD_S for t in timers), timers
    assert done.value.value["retry_after"] is not None  # left unfinished, saying so; the next tick takes over


# --------------------------------------------------------------------------- target.exportPipeline by name


@pytest.mark.parametrize("value", [
    "../../x", "a/b", "", " ", "x" * 300, "pipe\n", "pipe%2f..", 42, None, ["exp1"], {"name": "exp1"},
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/importPipelines/imp1x",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/exportPipelines/../x",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/exportPipelines/",
    "https://169.254.169.254/metadata/exportPipelines/exp1",
])
def test_a_hostile_export_pipeline_name_is_refused_naming_the_field(no_network, value):
    with pytest.raises(UsageError) as refused:
        parse_sync("hostile1", sync_body(exportPipeline=value))
    assert "properties.target.exportPipeline" in str(refused.value)


@pytest.mark.parametrize(("field", "value"), [("uri", "https://169.254.169.254/landing"),
                                              ("keyVaultUri", "https://169.254.169.254/secrets/sas"),
                                              ("uri", "http://10.0.0.5:10000/acct/landing")])
def test_a_pipeline_whose_container_left_the_allow_list_is_refused_before_any_connection(
        app_env, uname, monkeypatch, loopback_only, field, value):
    from activities.sync import sync_tick
    from ferry.sync.stored import SYNCS
    from ferry.transfer.models import ExportPipeline
    from ferry.transfer.store import Record, ResourceStore

    store = ResourceStore.from_connection_string(app_env)
    pipeline, name = f"{uname}p", f"{uname}s"
    container = {"type": "AzureStorageBlobContainer", "uri": "https://ferryacct.blob.core.windows.net/landing",
                 "storageAccessMode": "ConnectionString"}
    store.put(ExportPipeline.collection, Record(pipeline, {"properties": {
        "source": {"registryUri": "src.example.com"}, "target": container}}))
    body = sync_body(exportPipeline=pipeline)
    body["properties"]["policies"] = []
    assert call("sync_put", "PUT", f"syncs/{name}", body, params={"name": name}).status_code == 201
    # The pipeline is repointed at the metadata address behind the API's back (an older definition,
    # or a narrower allow-list): the tick refuses it before any connection, naming the field.
    container[field] = value
    store.put(ExportPipeline.collection, Record(pipeline, {"properties": {
        "source": {"registryUri": "src.example.com"}, "target": container}}))
    try:
        result = sync_tick({"name": name, "runId": RUN})
        assert "properties.target.exportPipeline" in result.get("error", ""), result
        assert value.split("/")[2].split(":")[0] in result["error"]
        put = call("sync_put", "PUT", f"syncs/{name}", body, params={"name": name})
        assert put.status_code in (400, 403) and b"properties.target.exportPipeline" in put.get_body()
        assert loopback_only == []
        assert store.find(SYNCS, name) is not None
    finally:
        call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})
        store.delete(ExportPipeline.collection, pipeline)


# --------------------------------------------------------------------------- time-bounded tag patterns


@pytest.mark.parametrize("pattern", [r"\p{L}+", r"(?V1)v.*", r"(?|a|b)", r"\mv1", r"(?r)v1", r"v\d+\K",
                                     r"(?b)v1", r"(?(DEFINE)(?<x>a))v1", r"\X+"])
def test_a_pattern_only_the_regex_package_reads_is_refused(no_network, pattern):
    with pytest.raises(UsageError, match="not a valid regular expression"):
        TagPattern.compile(pattern, "properties.tags.include[0]")


@pytest.mark.parametrize("pattern", [r"(a+)+b", r"(\w+-?)*x", r"(?:a{1,3})+b", r"((a|b)+)*c", r"(a*)*b"])
def test_a_nested_repetition_is_refused_when_the_sync_is_defined(no_network, pattern):
    with pytest.raises(UsageError, match=r"properties\.tags\.include"):
        parse_sync("patterns1", {**sync_body(), "properties": {**sync_body()["properties"],
                                                                "tags": {"include": [pattern]}}})


def test_a_backtracking_pattern_that_passes_the_nesting_check_times_out_on_one_tag(no_network):
    chain = TagFilter(include=("(a|aa)+b",))
    started = time.monotonic()
    with pytest.raises(UsageError, match="backtracks"):
        chain.select(["a" * 120])
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- sync state bounds


class MemoryState(StoredSyncState):
    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.written: list[str] = []
        super().__init__(None)

    def _write(self, body: dict[str, Any]) -> None:
        self.written.append(json.dumps(body, separators=(",", ":")))


def test_huge_rejection_reasons_are_cut_in_what_a_sync_remembers(no_network, write_every_change):
    state = MemoryState(10_000_000)
    state.set_tag("v1", TagState(GOOD, "rejected", "sha256:" + "0" * 64,
                                 ["\x1b" + "r" * 100_000 + SAS] * 50))
    kept = state.tag("v1")
    assert kept is not None and len(kept.reasons) == MAX_REASONS
    assert all(len(r) <= MAX_REASON_CHARS for r in kept.reasons)
    assert len(state.written[-1]) < 2_000


def test_a_hold_cannot_be_negative_or_endless_in_the_orchestration_arithmetic(no_network):
    for wait in (0.0, -1e300, 1e300, 5e-324):
        seconds = min(max(float(wait), 1.0), sync_orchestration.MAX_HOLD_S)
        assert 1.0 <= seconds <= sync_orchestration.MAX_HOLD_S
        assert datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)



# --------------------------------------------------------------------------- found and fixed


@pytest.mark.parametrize("policy", ["qa?x=1", "qa#frag", "a/b", "x/../../sync-other/raiseEvent/verdict-1", "qa%2F",
                                    "qa;p", "..", "q\u00e4"])
def test_a_verdict_event_name_travels_the_raise_event_url_unchanged_whatever_the_policy_id(no_network, policy):
    """Policy ids may hold any non-space character, and the Durable SDK puts the event name into the
    raise-event URL's path unescaped: '?', '#', '/' and '..' once cut the name short (two digits'
    verdicts then shared one event) or sent the event to another instance."""
    import yarl
    from azure.durable_functions import DurableOrchestrationClient

    from runner.client import binding_context

    body = sync_body()
    body["properties"]["policies"][0]["id"] = policy
    assert parse_sync("eventname1", body).policies[0].id == policy  # the grammar takes it
    sdk = DurableOrchestrationClient(binding_context("hub", "http://127.0.0.1:7071"))
    names = {sync_orchestration.verdict_event(RUN, p, d) for p in (policy, policy + "2") for d in (GOOD, OTHER)}
    assert len(names) == 4
    base = yarl.URL(sdk._get_raise_event_url("sync-mine", "NAME", None, None)).path.removesuffix("NAME")
    assert base.endswith("/instances/sync-mine/raiseEvent/")
    for name in names:
        url = yarl.URL(sdk._get_raise_event_url("sync-mine", name, None, None))
        assert (url.path, url.query_string, url.fragment) == (base + name, "", ""), (name, str(url))
        assert "/" not in name  # one path segment, as the host's route takes it


def test_a_reason_is_redacted_and_cut_before_it_becomes_an_event(two_syncs):
    """The event's payload is kept in the orchestration's history (and passed on as the finishing
    activity's input): a validator's secret or terminal escape must not get that far."""
    name = two_syncs[0]
    client = RecordingClient({f"sync-{name}": awaiting_status(RUN, (GOOD, "qa"))})
    reason = "\x1b[2J\x07CVE-1 " + SAS + " password=hunter2 " + "x" * 1800
    assert verdict(client, name, RUN, {"digest": GOOD, "verdict": "reject", "reason": reason})[0] == 202
    [(_, _, data)] = client.raised
    shown = json.dumps(data)
    assert "SECRETSAS" not in shown and "hunter2" not in shown and "\\u001b" not in shown and "\\u0007" not in shown
    assert "CVE-1" in data["reason"], data
    assert len(data["reason"]) <= MAX_REASON


@pytest.mark.parametrize("where", ["sync filter", "copy --tags"])
def test_many_tags_each_just_under_the_match_limit_are_bounded_in_all(no_network, monkeypatch, where):
    """Each tag alone stays well under the per-match limit (a few ms here), so no single match times
    out; without a bound on the whole selection, N tags held a core for N times that (a tag list
    may hold a million tags)."""
    from ferry.jobs.selection import _repository_tags
    from ferry.jobs.spec import RepositoryTags

    monkeypatch.setattr("ferry.patterns.MATCH_TIMEOUT", 1.0)  # no single match times out, even on a busy machine
    tags = ["a" * 19 + str(i) for i in range(2000)]
    started = time.monotonic()
    with pytest.raises(UsageError, match="in all"):
        if where == "sync filter":
            TagFilter(include=("(a|aa)+b",)).select(tags)
        else:
            source = SimpleNamespace(name="src.example.com", list_tags=lambda repository: tags)
            _repository_tags(source, RepositoryTags("up/app", "base/app", "(a|aa)+b"))
    assert time.monotonic() - started < 3.0
    honest = [f"v1.{i}.0" for i in range(20_000)]
    started = time.monotonic()
    assert len(TagFilter(include=(r"v\d+\.\d+\.\d+",), exclude=(r".*-rc.*",)).select(honest)) == 20_000
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(("pattern", "tag"), [
    (r"(?:v1){e<=1}", "v2"), (r"(?:1\.2\.3){e<=2}", "1.9.9"), (r"v1{e<=1}", "v2"), (r"v1{i<=1,s<=1}", "v2x"),
    (r"[[:alpha:]]+", "latest"), (r"v[[:digit:]]+", "v12"), (r"[[:^digit:]]+", "rc"),
])
def test_a_pattern_means_what_re_says_it_means(no_network, pattern, tag):
    """The grammar users are told about is Python's ``re``; the ``regex`` package that matches it
    reads some ``re``-valid text otherwise: ``{e<=1}`` after an item is a fuzzy match there (an
    include that takes far more tags than written), ``[[:alpha:]]`` a POSIX class. Such a pattern is
    refused, or matches exactly as ``re`` would."""
    import re

    try:
        compiled = TagPattern.compile(pattern, "properties.tags.include[0]")
    except UsageError as exc:
        assert "properties.tags.include[0]" in str(exc)
        return
    assert compiled.fullmatch(tag) == bool(re.fullmatch(pattern, tag)), (pattern, tag)


def test_a_thousand_long_tags_with_long_reasons_still_fit_the_table_record(no_network):
    """A tick remembers up to MAX_TAGS tags; with upstream tags of 128 characters, rollback tags of
    128 and three reasons of 300 each, the remembered tags alone ran to 1.4 M characters, which the
    fitting (runs only) could not cut: every write of the state failed ('too large to store'), so
    nothing was remembered and each tick judged, promoted and notified every tag again."""
    from ferry.sync.state import MAX_TAGS, SyncRun, TagOutcome
    from ferry.sync.stored import MAX_STATE_CHARS
    from ferry.transfer.store import Record, _entity

    class TableLike(StoredSyncState):
        max_chars = MAX_STATE_CHARS

        def _write(self, body: dict[str, Any]) -> None:
            _entity(Record("bigsync1", body))  # what the table store would refuse
            self.written = len(json.dumps(body, separators=(",", ":")))

    tags = [f"{i:04d}" + "t" * 124 for i in range(MAX_TAGS)]
    policies = "sha256:" + "0" * 64
    remembered = {t: {"digest": GOOD, "verdict": "rejected", "policies": policies, "unique_tag": "u" * 128,
                      "reasons": ["r" * MAX_REASON_CHARS] * MAX_REASONS} for t in tags}
    state = TableLike({"tags": remembered, "runs": []})
    state.set_tag(tags[0], TagState(OTHER, "promoted", policies, ["\u00e9" * 300] * 3, "u" * 128))
    run = SyncRun(RUN, "2026-01-01T12:00:00Z", tags=[TagOutcome(t, GOOD, "rejected", ["r" * 2000] * 3) for t in tags])
    state.add_run(run)
    assert state.written <= MAX_STATE_CHARS
    assert [state.tag(t).digest for t in tags[:2]] == [OTHER, GOOD]  # type: ignore[union-attr]
    assert all(state.tag(t) is not None and state.tag(t).policies == policies for t in tags)  # type: ignore[union-attr]
    assert state.runs()[0]["run_id"] == RUN


@pytest.mark.parametrize(("name", "run"), [("goodname1", "\x1b[2J\x07" + "9" * 5000), ("\x1b]0;pwned\x07" + "n" * 5000,
                                                                                     RUN + "\r\n")])
def test_a_hostile_run_id_or_name_is_not_echoed_raw_or_whole(app_env, name, run):
    client = RecordingClient({})
    code, answer, text = verdict(client, name, run, {"digest": GOOD, "verdict": "approve"})
    message = answer["error"]["message"]
    assert code in (400, 404) and client.raised == []
    assert len(text) < 500 and not any(ord(ch) < 32 or ord(ch) == 127 for ch in message), message


def test_state_writes_are_conditional_on_the_version_read(app_env, uname, write_every_change):
    """Two ticks of one sync (or a tick over a sync deleted under it) never overwrite each other."""
    from ferry.errors import ConflictError
    from ferry.sync.stored import STATE, TableSyncState
    from ferry.transfer.store import ResourceStore

    store, name = ResourceStore.from_connection_string(app_env), f"{uname}st"
    first, second = TableSyncState(store, name), TableSyncState(store, name)
    first.set_tag("v1", TagState(GOOD, "promoted", "sha256:" + "0" * 64))
    with pytest.raises(ConflictError, match="its state changed while this tick ran"):
        second.set_tag("v1", TagState(OTHER, "rejected", "sha256:" + "0" * 64))
    again = TableSyncState(store, name)
    store.delete(STATE, name)  # the sync deleted while this tick ran
    with pytest.raises(ConflictError):
        again.set_tag("v2", TagState(OTHER, "promoted", "sha256:" + "0" * 64))
    assert store.find(STATE, name) is None  # not brought back


def test_the_custom_status_of_a_run_awaiting_many_verdicts_stays_under_16_kb(fake_registry, registry_b):
    """ARCHITECTURE: custom status under 16 KB. The status lists every awaited verdict (tag, digest,
    policy id) for the callback, and a tick left every changed tag awaiting an external validator
    that answers pending: 60 tags of 128 characters with a 100-character policy id made 20 KB
    (MAX_TAGS made 300 KB). A tick awaits a bounded number; the other tags wait for the next tick."""
    from ferry.jobs.endpoints import JobEnvironment
    from ferry.sync.tick import run_sync
    from orchestrations.progress import status
    from tests.harness import content as c
    from tests.harness.validator import Validator

    tags = [f"{i:03d}" + "t" * 125 for i in range(60)]
    for i, tag in enumerate(tags):
        image = c.oci_image([c.random_layer(200, 7000 + i)], seed=7000 + i)
        for blob in image.all_blobs():
            fake_registry.add_blob(blob.data)
        fake_registry.add_manifest("up/many", image.media_type, image.raw, tags=[tag])
    validator = Validator()
    validator.answer = lambda request: (202, {"verdict": "pending"})
    try:
        sync = parse_sync("manysync1", {"properties": {
            "source": {"registryUri": fake_registry.host, "repository": "up/many"},
            "target": {"registryUri": registry_b.host, "repository": "base/many"},
            "policies": [{"kind": "external", "id": "p" * 100, "url": validator.server.url, "timeoutSeconds": 60}]}})
        state = MemoryState(10_000_000)
        run = run_sync(sync, state, JobEnvironment(), run_id=RUN, later_verdicts=True)
    finally:
        validator.server.stop()
    shown = status("sync", 50, step=sync_orchestration.AWAITING, run=RUN, awaiting=[
        {"tag": a["tag"], "digest": a["digest"], "policy": a["policy"]} for a in run.awaiting])
    assert len(run.awaiting) > 0 and len(json.dumps(shown)) <= 16 * 1024, (len(run.awaiting), len(json.dumps(shown)))
    assert len(run.awaiting) == len(tags) or any("next tick" in note for note in run.notes), run.notes


def test_a_registry_that_asks_every_request_to_wait_a_minute_does_not_hold_a_tick_in_process_for_hours(
        fake_registry, monkeypatch):
    """Each Retry-After under a minute is honoured in-process (rule 3), once per operation; a tick
    makes one HEAD per tag, so a registry answering each tag's first HEAD with 429 and
    ``Retry-After: 59`` held one activity for tags x 59 s (up to MAX_TAGS: 16 hours) instead of
    handing the wait to the orchestration's durable timer."""
    from ferry.jobs.endpoints import JobEnvironment
    from ferry.sync.tick import run_sync
    from tests.harness import content as c

    image = c.oci_image([c.random_layer(1_000, 97)], seed=97)
    for blob in image.all_blobs():
        fake_registry.add_blob(blob.data)
    tags = [f"v{i:03d}" for i in range(30)]
    fake_registry.add_manifest("up/slow", image.media_type, image.raw, tags=tags)
    for tag in tags:
        fake_registry.fail_next(f"/manifests/{tag}", 429, times=1, headers={"Retry-After": "59"}, method="HEAD")
    slept: list[float] = []
    monkeypatch.setattr("ferry.registry.retry.time.sleep", slept.append)
    sync = parse_sync("slowsync1", {"properties": {
        "source": {"registryUri": fake_registry.host, "repository": "up/slow"},
        "target": {"registryUri": "127.0.0.1:1", "repository": "base/slow"}}})
    run = run_sync(sync, MemoryState(10_000_000), JobEnvironment(), run_id=RUN, dry_run=True)
    assert sum(slept) <= 2 * RetryPolicy().max_retry_after, (len(slept), sum(slept))
    assert run.retry_after is not None or len(run.tags) == len(tags)


def test_a_body_of_many_hostile_unknown_fields_is_not_echoed_back(two_syncs):
    """The 400 named every unknown field as given: a 1 MiB body of keys came back whole, terminal
    escapes included."""
    client = RecordingClient({f"sync-{two_syncs[0]}": awaiting_status(RUN, (GOOD, "qa"))})
    body = {"digest": GOOD, "verdict": "approve", **{f"\x1b[{i}m": 1 for i in range(40_000)}}
    code, answer, text = verdict(client, two_syncs[0], RUN, body)
    message = answer["error"]["message"]
    assert (code, "unknown field" in message) == (400, True)
    assert len(text) < 1000 and not any(ord(ch) < 32 for ch in message), message[:200]
    assert client.raised == []


@pytest.mark.parametrize("timeout", [0, -1, 604_801, 10 ** 12, 1.5, True, "600", None])
def test_an_external_policy_cannot_make_a_run_wait_past_a_week(no_network, timeout):
    body = sync_body()
    body["properties"]["policies"][0]["timeoutSeconds"] = timeout
    if timeout is None:
        body["properties"]["policies"][0].pop("timeoutSeconds")
        assert parse_sync("timeouts1", body).policies[0].timeout_seconds <= 7 * 24 * 3600  # type: ignore[attr-defined]
        return
    with pytest.raises(UsageError, match=r"timeoutSeconds"):
        parse_sync("timeouts1", body)


@pytest.mark.parametrize("pattern", [r"(?:x{65535}){65535}", r"(?:x?|y{65535}){65535}", r"(?:[a-z]{3000}){3000}",
                                     r"(?:(?:x{128}){128}){128}", r"(?:x{65535}|){65535}"])
def test_a_short_pattern_cannot_make_the_matcher_expand_gigabytes(no_network, pattern):
    """The regex package expands counted repeats when it compiles: the 19 characters
    ``(?:x{65535}){65535}`` asked for 4 G characters, and without a memory limit the process (the
    Functions worker handling PUT /api/syncs, which compiles the filter chain) was killed. Run in a
    child limited to 1 GiB of memory so that, unfixed, it is the child that fails."""
    import subprocess
    import sys

    code = ("import resource, sys, time\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from ferry.errors import UsageError\n"
            "from ferry.patterns import TagPattern\n"
            "from ferry.sync.filters import TagFilter\n"
            "tags = {'include': [sys.argv[1]]}\n"
            "for attempt in (lambda: TagFilter.from_json(tags, 'properties.tags'),\n"
            "                lambda: TagPattern.compile(sys.argv[1], 'tag pattern')):\n"
            "    started = time.monotonic()\n"
            "    try:\n"
            "        attempt()\n"
            "        print('compiled')\n"
            "    except UsageError as exc:\n"
            "        print('refused', round(time.monotonic() - started, 2), str(exc)[:200])\n")
    child = subprocess.run([sys.executable, "-c", code, pattern], capture_output=True, text=True, timeout=120,
                           check=False)
    assert child.returncode == 0, child.stderr[-1000:]
    lines = child.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("refused") for line in lines), lines
    assert all(float(line.split()[1]) < 1.0 for line in lines), lines


def test_a_registry_that_asks_every_tag_page_to_wait_a_minute_does_not_hold_a_tick_in_process(
        fake_registry, monkeypatch):
    """The same on the tag list: one operation per page, so a registry answering each page's first
    GET with 429 and ``Retry-After: 59`` held the tick's listing for pages x 59 s (up to 1,000 pages)."""
    from ferry.jobs.endpoints import JobEnvironment
    from ferry.sync.tick import run_sync
    from tests.harness import content as c
    from tests.harness.fakeregistry import Fault

    image = c.oci_image([c.random_layer(1_000, 98)], seed=98)
    fake_registry.add_manifest("up/pages", image.media_type, image.raw, tags=[f"t{i:05d}" for i in range(20_000)])
    answered = {"pages": 0}
    taken = fake_registry._take_fault

    def every_first_page_request(method: str, path: str) -> Fault | None:
        if path.endswith("/tags/list"):
            answered["pages"] += 1
            if answered["pages"] % 2:
                return Fault("/tags/list", 429, 1, {"Retry-After": "59"})
        return taken(method, path)

    monkeypatch.setattr(fake_registry, "_take_fault", every_first_page_request)
    slept: list[float] = []
    monkeypatch.setattr("ferry.registry.retry.time.sleep", slept.append)
    sync = parse_sync("pagesync1", {"properties": {
        "source": {"registryUri": fake_registry.host, "repository": "up/pages"}, "tags": {"include": ["none"]},
        "target": {"registryUri": "127.0.0.1:1", "repository": "base/pages"}}})
    run = run_sync(sync, MemoryState(10_000_000), JobEnvironment(), run_id=RUN, dry_run=True)
    assert sum(slept) <= 2 * RetryPolicy().max_retry_after, (len(slept), sum(slept))
    assert run.retry_after is not None


@pytest.mark.parametrize("schedule", ["a b c d e f", "0 0 0 31 2 *", "61 * * * * *", "0 */0 * * * *",
                                      "9999999999 * * * * *"])
def test_a_schedule_that_cron_cannot_read_or_that_never_fires_is_refused_at_put(no_network, schedule):
    body = sync_body()
    body["properties"]["schedule"] = schedule
    with pytest.raises(UsageError, match=r"properties\.schedule"):
        parse_sync("cronsync1", body)


def test_one_stored_sync_the_timer_cannot_read_does_not_stop_every_other_sync(app_env, uname):
    """The timer walked every sync and raised on the first whose schedule croniter refused (or whose
    definition no longer parses, e.g. a pattern refused since it was stored): no sync after it in
    name order ever started again."""
    from api.syncs import start_due_syncs
    from ferry.sync.stored import SYNCS
    from ferry.transfer.store import Record, ResourceStore

    store = ResourceStore.from_connection_string(app_env)
    bad_schedule, bad_pattern, good = f"{uname}a", f"{uname}b", f"{uname}c"
    for name, schedule, include in ((bad_schedule, "0 0 0 31 2 *", "v.*"), (bad_pattern, "* * * * * *", "v{e<=1}"),
                                    (good, "* * * * * *", "v.*")):
        body = sync_body()
        body["properties"] |= {"schedule": schedule, "tags": {"include": [include]}}
        store.put(SYNCS, Record(name, {"properties": body["properties"]}))

    class Starter(RecordingClient):
        started: list[str] = []

        async def start_new(self, orchestrator: str, instance_id: str, client_input: Any = None) -> str:
            self.started.append(instance_id)
            return instance_id

    client = Starter({})
    try:
        started = asyncio.run(start_due_syncs(client, datetime.now(UTC)))
        assert good in started and f"sync-{good}" in client.started
        assert bad_schedule not in started and bad_pattern not in started
    finally:
        for name in (bad_schedule, bad_pattern, good):
            store.delete(SYNCS, name)


@pytest.mark.parametrize("policy", ["\x1b[2J" + "p" * 100_000, "qa\nqa", "p" * 101])
def test_a_policy_that_cannot_be_a_policy_id_is_refused_without_echoing_it(two_syncs, policy):
    client = RecordingClient({f"sync-{two_syncs[0]}": awaiting_status(RUN, (GOOD, "qa"))})
    code, answer, text = verdict(client, two_syncs[0], RUN, {"digest": GOOD, "verdict": "approve", "policy": policy})
    message = answer["error"]["message"]
    assert code in (400, 404) and client.raised == []
    assert len(text) < 1000 and not any(ord(ch) < 32 for ch in message), message[:200]


@pytest.mark.parametrize("step", ["tick", "holding off", "finish", "done"])
def test_a_verdict_while_the_run_is_not_awaiting_raises_nothing(two_syncs, step):
    name = two_syncs[0]
    held = awaiting_status(RUN, (GOOD, "qa"))
    held.custom_status["step"] = step
    client = RecordingClient({f"sync-{name}": held})
    code, answer, _ = verdict(client, name, RUN, {"digest": GOOD, "verdict": "approve"})
    assert (code, "is not awaiting verdicts" in answer["error"]["message"]) == (404, True), answer
    assert client.raised == []


@pytest.fixture
def write_every_change(monkeypatch):
    """State written at every set_tag, as a tick does once SAVE_EVERY has passed."""
    monkeypatch.setattr("ferry.sync.state.SAVE_EVERY", 0.0)
