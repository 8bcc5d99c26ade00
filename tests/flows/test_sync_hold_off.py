"""A registry that says to hold off stops the tick at once, saying for how long, and the same run
resumes later: a ``Retry-After`` longer than a request may wait (no part of it waited in-process),
and ``RateLimit-Remaining: 0`` (no further request sent). Through the CLI (exit 75, resume with the
same run id) and through the app's orchestration (a durable timer, then the same run resumed)."""

from __future__ import annotations

import json
import time

import pytest

import function_app
from runner.client import LocalDurableClient
from runner.replay import LocalOrchestrationRunner
from tests.app.test_syncs_api import call
from tests.harness import content as c
from tests.helpers import run_ferry


def serve(fake_registry, repository: str, tags: list[str], seed: int) -> c.Manifest:
    image = c.oci_image([c.random_layer(2_000, seed)], env=["BACKGROUND_COLOR=Blue"], seed=seed)
    for blob in image.all_blobs():
        fake_registry.add_blob(blob.data)
    fake_registry.add_manifest(repository, image.media_type, image.raw, tags=tags)
    return image


def definition(source: str, target: str, name: str) -> dict:
    return {"name": name, "properties": {
        "source": {"registryUri": source, "repository": "up/held"},
        "tags": {"include": ["v.*"]},
        "target": {"registryUri": target, "repository": f"base/{name}"},
        "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}]}}


def test_a_long_retry_after_stops_the_tick_at_once_and_the_same_run_resumes(fake_registry, registry_b, tmp_path,
                                                                            capsys):
    image = serve(fake_registry, "up/held", ["v1"], 91)
    sync_file = tmp_path / "held.json"
    sync_file.write_text(json.dumps(definition(fake_registry.host, registry_b.host, "held1")))
    fake_registry.fail_next("/tags/list", 429, times=1000, headers={"Retry-After": "900"})
    started = time.monotonic()
    held = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000000", "--json")
    assert held.code == 75 and time.monotonic() - started < 5
    assert "asked to hold off 900 s" in held.err and "--run-id 20260101000000" in held.err
    record = held.json()
    assert (record["retry_after"], record["finished"], record["tags"]) == (900, None, [])
    assert fake_registry.count("/tags/list", "GET") == 1 and c.list_tags(registry_b.url, "base/held1") == []

    fake_registry.clear_faults()
    resumed = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000000", "--json")
    assert resumed.code == 0, resumed.err
    [tag] = resumed.json()["tags"]
    assert tag["status"] == "promoted" and resumed.json()["finished"] and resumed.json()["retry_after"] is None
    assert c.sha256_digest(c.get_manifest(registry_b.url, "base/held1", "v1")[1]) == image.digest
    state = json.loads((tmp_path / "held.state.json").read_text())
    assert [r["run_id"] for r in state["runs"]] == ["20260101000000"]  # one run, resumed, recorded once


def test_rate_limit_remaining_zero_sends_no_further_request(fake_registry, registry_b, tmp_path, capsys):
    serve(fake_registry, "up/held", ["v1", "v2", "v3"], 92)
    sync_file = tmp_path / "held2.json"
    sync_file.write_text(json.dumps(definition(fake_registry.host, registry_b.host, "held2")))
    fake_registry.extra_headers = {"RateLimit-Remaining": "0;w=21600"}
    held = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000001", "--json")
    assert held.code == 75 and held.json()["retry_after"] == 21600
    assert fake_registry.count("/manifests/", "HEAD") == 0  # the tag list said none are left: no HEAD sent
    assert fake_registry.count("/manifests/", "GET") == 0 and c.list_tags(registry_b.url, "base/held2") == []


@pytest.fixture
def app(azurite, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    with LocalOrchestrationRunner(function_app.app) as runner:
        yield runner, LocalDurableClient(runner)


def test_the_orchestration_holds_off_on_a_durable_timer_and_resumes_the_run(app, fake_registry, registry_b):
    runner, client = app
    name = "held3"
    image = serve(fake_registry, "up/held", ["v1"], 93)
    body = definition(fake_registry.host, registry_b.host, name)
    assert call("sync_put", "PUT", f"syncs/{name}", body, params={"name": name}).status_code in (200, 201)
    fake_registry.fail_next("/tags/list", 429, times=1, headers={"Retry-After": "3600"})
    started = time.monotonic()
    assert call("sync_run_start", "POST", f"syncs/{name}/run", client=client, params={"name": name}).status_code == 202
    result = runner.wait(f"sync-{name}", 60)  # the runner fires the hour's timer early: nothing else can happen
    assert result.status == "Completed", result.error
    assert time.monotonic() - started < 30
    [tag] = result.output["tags"]
    assert tag["status"] == "promoted" and result.output["retry_after"] is None
    steps = [s.get("step") for s in runner.get(f"sync-{name}").status_history if isinstance(s, dict)]
    assert "holding off" in steps
    held = next(s for s in runner.get(f"sync-{name}").status_history if s.get("step") == "holding off")
    assert held["seconds"] == 3600
    assert fake_registry.count("/tags/list", "GET") == 2
    assert c.sha256_digest(c.get_manifest(registry_b.url, f"base/{name}", "v1")[1]) == image.digest
    call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})


def test_ferry_sync_waits_on_limits_through_the_orchestration_and_resumes(fake_registry, registry_b, tmp_path,
                                                                         capsys):
    image = serve(fake_registry, "up/held", ["v1"], 94)
    sync_file = tmp_path / "held4.json"
    sync_file.write_text(json.dumps(definition(fake_registry.host, registry_b.host, "held4")))
    fake_registry.fail_next("/tags/list", 200, times=1, body=json.dumps({"name": "up/held", "tags": ["v1"]}).encode(),
                            headers={"Content-Type": "application/json", "RateLimit-Remaining": "0",
                                     "RateLimit-Reset": "1"})
    started = time.monotonic()
    done = run_ferry(capsys, "sync", str(sync_file), "--once", "--wait-on-limits", "--json")
    assert done.code == 0, done.err
    assert time.monotonic() - started >= 1.0  # the hold was waited, on the orchestration's timer
    [tag] = done.json()["tags"]
    assert tag["status"] == "promoted" and done.json()["retry_after"] is None
    assert fake_registry.count("/tags/list", "GET") == 2 and fake_registry.count("/manifests/v1", "HEAD") == 1
    assert c.sha256_digest(c.get_manifest(registry_b.url, "base/held4", "v1")[1]) == image.digest


def test_a_tick_looks_at_most_max_tags_and_forgets_tags_no_longer_selected(fake_registry, registry_b, tmp_path,
                                                                         capsys, monkeypatch):
    serve(fake_registry, "up/held", ["v1", "v2", "v3"], 95)
    monkeypatch.setattr("ferry.sync.tick.MAX_TAGS", 2)
    sync_file = tmp_path / "held5.json"
    body = definition(fake_registry.host, registry_b.host, "held5")
    sync_file.write_text(json.dumps(body))
    first = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000005", "--json")
    assert first.code == 0, first.err
    assert [t["tag"] for t in first.json()["tags"]] == ["v1", "v2"]
    assert "3 tags selected; this tick looked at the first 2" in first.json()["notes"][0]
    assert fake_registry.count("/manifests/", "HEAD") == 2
    state = json.loads((tmp_path / "held5.state.json").read_text())
    assert sorted(state["tags"]) == ["v1", "v2"]
    body["properties"]["tags"] = {"include": ["v2"]}
    sync_file.write_text(json.dumps(body))
    second = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000006", "--json")
    assert [t["status"] for t in second.json()["tags"]] == ["unchanged"]
    state = json.loads((tmp_path / "held5.state.json").read_text())
    assert sorted(state["tags"]) == ["v2"]  # v1 is no longer selected: forgotten, judged afresh if it returns
    assert state["runs"][0]["unchanged"] == 1 and state["runs"][0]["tags"] == []


def test_a_tick_that_cannot_reach_its_source_is_recorded_as_failed(registry_b, tmp_path, capsys):
    sync_file = tmp_path / "gone.json"
    sync_file.write_text(json.dumps(definition("127.0.0.1:1", registry_b.host, "gone1")))  # nothing listens
    gone = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "20260101000009")
    assert gone.code != 0 and "cannot reach registry 127.0.0.1:1" in gone.err
    [run] = json.loads((tmp_path / "gone.state.json").read_text())["runs"]
    assert run["run_id"] == "20260101000009" and "cannot reach registry" in run["failure"] and run["finished"]
