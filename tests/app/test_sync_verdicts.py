"""Verdicts given later: an external validator answers ``pending``, the real sync_run orchestration
waits on the local runner (a durable wait for one external event per awaited digest), and
``POST /api/syncs/{name}/runs/{run}/verdict`` raises the verdict. Approve promotes, reject keeps
the target untouched, silence past the timeout rejects; a verdict for a wrong run, a wrong digest
or a hostile run id is refused before any event is raised."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import function_app
from runner.client import LocalDurableClient
from runner.replay import LocalOrchestrationRunner
from tests.app.test_syncs_api import call, definition
from tests.harness import content as c
from tests.harness.validator import Validator


@pytest.fixture
def validator():
    found = Validator()
    found.answer = lambda request: (202, {"verdict": "pending"})
    yield found
    found.server.stop()


def start_app(monkeypatch, azurite, event_grace: float | None):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    return LocalOrchestrationRunner(function_app.app, event_grace=event_grace)


def awaiting(runner: LocalOrchestrationRunner, instance_id: str, count: int, deadline_s: float = 30) -> dict[str, Any]:
    """The instance's custom status once it awaits ``count`` verdicts."""
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        record = runner.get(instance_id)
        status = record.custom_status if record else None
        if isinstance(status, dict) and len(status.get("awaiting") or []) == count:
            return status
        assert record is None or record.runtime_status in ("Pending", "Running"), (record.runtime_status, record.error)
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} never awaited {count} verdict(s)")


def sync_with_validator(registry, registry_b, validator, name: str, timeout: int) -> dict[str, Any]:
    body = definition(registry, registry_b, name)
    body["properties"]["policies"] = [{"kind": "external", "id": "qa", "url": validator.server.url,
                                       "timeoutSeconds": timeout}]
    return body


def verdict(name: str, run: str, body: Any, client: Any) -> tuple[int, dict[str, Any]]:
    resp = call("sync_verdict", "POST", f"syncs/{name}/runs/{run}/verdict", body, client=client,
                params={"name": name, "run": run})
    return resp.status_code, json.loads(resp.get_body() or b"{}")


def test_verdicts_given_later_promote_or_reject_and_wrong_callbacks_are_refused(
        monkeypatch, azurite, registry, registry_b, validator):
    name = "latesync1"
    good = c.push(registry.url, f"up/{name}", c.oci_image([c.random_layer(3_000, 81)]), tag="v1")
    bad = c.push(registry.url, f"up/{name}", c.oci_image([c.random_layer(3_000, 82)]), tag="v2")
    with start_app(monkeypatch, azurite, None) as runner:
        client = LocalDurableClient(runner)
        assert call("sync_put", "PUT", f"syncs/{name}", sync_with_validator(registry, registry_b, validator, name, 600),
                    params={"name": name}).status_code == 201
        assert call("sync_run_start", "POST", f"syncs/{name}/run", client=client,
                    params={"name": name}).status_code == 202
        status = awaiting(runner, f"sync-{name}", 2)
        run = status["run"]
        assert {a["digest"] for a in status["awaiting"]} == {good, bad}
        assert c.list_tags(registry_b.url, f"base/{name}") == []  # nothing lands while a verdict is awaited
        assert {r["callback"] for r in validator.requests} == {f"/api/syncs/{name}/runs/{run}/verdict"}
        assert {r["run"] for r in validator.requests} == {run}

        refused = [
            ("19990101000000", {"digest": good, "verdict": "approve"}, 404, "not awaiting"),
            ("../../x", {"digest": good, "verdict": "approve"}, 400, "run id"),
            (run, {"digest": "sha256:" + "0" * 64, "verdict": "approve"}, 404, "no verdict on"),
            (run, {"digest": good, "verdict": "approve", "policy": "other"}, 404, "by policy other"),
            (run, {"digest": good, "verdict": "maybe"}, 400, "body.verdict"),
            (run, {"digest": good, "verdict": "approve", "extra": 1}, 400, "unknown field"),
            (run, ["approve"], 400, "body"),
        ]
        for run_id, body, code, said in refused:
            got, answer = verdict(name, run_id, body, client)
            assert (got, said in answer["error"]["message"]) == (code, True), (run_id, body, answer)
        assert runner.get(f"sync-{name}").runtime_status == "Running"
        assert verdict("nosuchsync", run, {"digest": good, "verdict": "approve"}, client)[0] == 404

        # Both verdicts back to back: one event name per digest, so neither is lost.
        assert verdict(name, run, {"digest": good, "verdict": "approve"}, client)[0] == 202
        assert verdict(name, run, {"digest": bad, "verdict": "reject",
                                   "reason": "CVE found; see https://x/y?sig=SECRETSAS"}, client)[0] == 202
        result = runner.wait(f"sync-{name}", 60)
    assert result.status == "Completed", result.error
    tags = {t["tag"]: t for t in result.output["tags"]}
    assert tags["v1"]["status"] == "promoted" and tags["v2"]["status"] == "rejected"
    assert "CVE found" in tags["v2"]["reasons"][0] and "SECRETSAS" not in json.dumps(result.output)
    assert sorted(c.list_tags(registry_b.url, f"base/{name}")) == sorted(tags["v1"]["promoted"])
    assert c.sha256_digest(c.get_manifest(registry_b.url, f"base/{name}", "v1")[1]) == good
    runs = json.loads(call("sync_runs", "GET", f"syncs/{name}/runs", params={"name": name}).get_body())["value"]
    assert [r["run_id"] for r in runs] == [run] and runs[0]["finished"] and runs[0]["awaiting"] == []
    call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})


def test_no_verdict_within_the_timeout_is_a_rejection(monkeypatch, azurite, registry, registry_b, validator):
    name = "latesync2"
    c.push(registry.url, f"up/{name}", c.oci_image([c.random_layer(3_000, 83)]), tag="v1")
    with start_app(monkeypatch, azurite, 0.2) as runner:
        client = LocalDurableClient(runner)
        call("sync_put", "PUT", f"syncs/{name}", sync_with_validator(registry, registry_b, validator, name, 3600),
             params={"name": name})
        call("sync_run_start", "POST", f"syncs/{name}/run", client=client, params={"name": name})
        result = runner.wait(f"sync-{name}", 60)  # the runner fires the hour's timer once nothing else can happen
    assert result.status == "Completed", result.error
    [tag] = result.output["tags"]
    assert tag["status"] == "rejected" and "no verdict came within 3600 s" in tag["reasons"][0]
    assert c.list_tags(registry_b.url, f"base/{name}") == []
    call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})
