"""Syncs in the Functions app: the HTTP routes on Azurite tables and claims, the real sync_run
orchestration and sync_tick activity on the local runner against local registries, the timer's
singleton rule, and the indexed metadata."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import function_app
from api.syncs import start_due_syncs
from ferry.sync.stored import is_due
from runner.client import LocalDurableClient
from runner.replay import LocalOrchestrationRunner
from tests.app.api import call
from tests.harness import content as c
from tests.helpers import app_functions

FUNCTIONS = app_functions()
KEY = "FUNCTIONKEYsyncs"


@pytest.fixture
def app(azurite, registry, registry_b, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    with LocalOrchestrationRunner(function_app.app) as runner:
        yield runner, LocalDurableClient(runner)


def definition(registry, registry_b, name: str, **extra: Any) -> dict[str, Any]:
    return {"properties": {
        "source": {"registryUri": registry.host, "repository": f"up/{name}",
                   "credentials": {"username": "u", "password": "SYNCPASSWORD"}},
        "tags": {"include": ["v.*"]},
        "target": {"registryUri": registry_b.host, "repository": f"base/{name}"},
        "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}],
        "schedule": "0 */5 * * * *", **extra}}


def test_a_sync_runs_through_the_app_and_keeps_its_secret(app, registry, registry_b, content):
    runner, client = app
    name = "appsync1"
    c.push(registry.url, f"up/{name}", c.oci_image([c.random_layer(3_000, 77)], env=["BACKGROUND_COLOR=Blue"]),
           tag="v1")
    put = call("sync_put", "PUT", f"syncs/{name}", definition(registry, registry_b, name), params={"name": name})
    assert put.status_code == 201, put.get_body()
    shown = call("sync_get", "GET", f"syncs/{name}", params={"name": name}).get_body()
    assert b"SYNCPASSWORD" not in shown and b"credentials" not in shown
    started = call("sync_run_start", "POST", f"syncs/{name}/run", client=client, params={"name": name})
    assert started.status_code == 202, started.get_body()
    [instance] = runner.instances()
    assert instance.instance_id == f"sync-{name}" and "SYNCPASSWORD" not in json.dumps(instance.input)
    result = runner.wait(instance.instance_id, 60)
    assert result.status == "Completed", result.error
    [tag] = result.output["tags"]
    assert tag["status"] == "promoted" and tag["promoted"][1] == "v1"
    assert c.list_tags(registry_b.url, f"base/{name}") == sorted(tag["promoted"])
    runs = json.loads(call("sync_runs", "GET", f"syncs/{name}/runs", params={"name": name}).get_body())["value"]
    assert runs[0]["tags"][0]["status"] == "promoted"
    assert call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name}).status_code == 200


def test_the_timer_starts_due_syncs_once_as_singletons(app, registry, registry_b):
    runner, client = app
    name = "appsync2"
    assert call("sync_put", "PUT", f"syncs/{name}", definition(registry, registry_b, name),
                params={"name": name}).status_code in (200, 201)
    now = datetime.now(UTC)
    first = asyncio.run(start_due_syncs(client, now))
    assert name in first
    again = asyncio.run(start_due_syncs(client, now))  # still running, or just ran: not started twice
    result = runner.wait(f"sync-{name}", 60)
    assert name not in again  # still running, or ran since it fired: started once
    assert result.status == "Completed", result.error
    runs = json.loads(call("sync_runs", "GET", f"syncs/{name}/runs", params={"name": name}).get_body())["value"]
    assert len(runs) == 1 and runs[0]["finished"], runs  # recorded before it ended: the timer sees it started
    assert name not in asyncio.run(start_due_syncs(client, now))
    assert call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name}).status_code == 200


@pytest.mark.parametrize(("body_change", "field"), [
    ({"target": {"registryUri": "169.254.169.254", "repository": "x"}}, "properties.target.registryUri"),
    ({"notifications": {"webhooks": [{"uri": "https://evil.example.com/hook"}]}},
     "properties.notifications.webhooks[0].uri"),
    ({"schedule": "bogus"}, "properties.schedule"),
    ({"policies": [{"kind": "external", "url": "http://10.0.0.1/validate"}]}, "properties.policies[0].url"),
    ({"source": {"registryUri": "169.254.169.254", "repository": "x"}}, "properties.source.registryUri"),
    ({"notifications": {"eventGrid": {"topicEndpoint": "https://t.westus-1.eventgrid.azure.net/api/events"}}},
     "properties.notifications.eventGrid.topicEndpoint"),
    ({"target": {"archive": {"uri": "https://evil.example.com/c", "storageAccessMode": "ManagedIdentity"}}},
     "properties.target.archive.uri"),
    ({"target": {"archive": {"uri": "https://127.0.0.1:10000/acct1/c", "storageAccessMode": "SasToken",
                             "keyVaultUri": "https://evil.vault.azure.net/secrets/sas"}}},
     "properties.target.archive.keyVaultUri"),
])
def test_a_hostile_or_bad_sync_is_400_naming_the_field(app, registry, registry_b, body_change, field):
    body = definition(registry, registry_b, "appsync3")
    body["properties"].update(body_change)
    resp = call("sync_put", "PUT", "syncs/appsync3", body, params={"name": "appsync3"})
    assert resp.status_code == 400 and field in json.loads(resp.get_body())["error"]["message"]


@pytest.mark.parametrize("name", ["../secrets", "a/b", "x" * 200, "", "sync%00"])
def test_a_name_that_cannot_be_a_sync_is_refused_on_every_route(app, registry, registry_b, name):
    put = call("sync_put", "PUT", f"syncs/{name}", definition(registry, registry_b, "n"), params={"name": name})
    assert put.status_code == 400 and "name" in json.loads(put.get_body())["error"]["message"]
    assert call("sync_get", "GET", f"syncs/{name}", params={"name": name}).status_code == 404
    # DELETE is idempotent as in ARM: nothing by that name, nothing deleted (204), never a 5xx.
    assert call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name}).status_code == 204


def test_an_archive_target_on_the_allow_list_is_accepted(app, registry, registry_b):
    """An incremental-transfer sync names no target registry: only its container (and vault) are checked."""
    body = definition(registry, registry_b, "appsync4")
    body["properties"]["target"] = {"archive": {"uri": "https://127.0.0.1:10000/acct1/outbox",
                                                "storageAccessMode": "ManagedIdentity"}}
    resp = call("sync_put", "PUT", "syncs/appsync4", body, params={"name": "appsync4"})
    assert resp.status_code in (200, 201), resp.get_body()
    assert call("sync_delete", "DELETE", "syncs/appsync4", params={"name": "appsync4"}).status_code == 200


def test_a_schedule_is_due_once_per_firing():
    now = datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    assert is_due("0 */5 * * * *", None, now)
    assert not is_due("0 */5 * * * *", now - timedelta(minutes=1), now)   # ran at 00:06, fired at 00:05
    assert is_due("0 */5 * * * *", now - timedelta(minutes=3), now)       # ran at 00:04
    assert not is_due(None, None, now)


def test_the_sync_functions_are_indexed():
    def binding(name: str, kind: str) -> dict:
        return next(b for b in map(json.loads, FUNCTIONS[name].get_raw_bindings()) if b["type"] == kind)

    assert binding("sync_timer", "timerTrigger")["schedule"] == "%FERRY_SYNC_TICK%"
    assert binding("sync_run_start", "httpTrigger")["route"] == "syncs/{name}/run"
    verdict = binding("sync_verdict", "httpTrigger")
    assert (verdict["route"], verdict["methods"], verdict["authLevel"]) == (
        "syncs/{name}/runs/{run}/verdict", ["POST"], "FUNCTION")
    assert binding("sync_verdict", "durableClient")
    assert FUNCTIONS["sync_run"].get_trigger().get_dict_repr()["type"] == "orchestrationTrigger"
    assert FUNCTIONS["sync_tick"].get_trigger().get_dict_repr()["type"] == "activityTrigger"


def test_rollback_through_the_api_repoints_the_stable_tag(app, registry, registry_b):
    name = "appsync5"
    assert call("sync_put", "PUT", f"syncs/{name}", definition(registry, registry_b, name),
                params={"name": name}).status_code in (200, 201)
    good = c.push(registry_b.url, f"base/{name}", c.oci_image([c.random_layer(3_000, 71)]), tag="v1-20260101000000")
    bad = c.push(registry_b.url, f"base/{name}", c.oci_image([c.random_layer(3_000, 72)]), tag="v1")
    assert good != bad
    resp = call("sync_rollback", "POST", f"syncs/{name}/rollback", {"tag": "v1", "to": "v1-20260101000000"},
                params={"name": name})
    assert resp.status_code == 200, resp.get_body()
    assert json.loads(resp.get_body())["digest"] == good
    assert c.sha256_digest(c.get_manifest(registry_b.url, f"base/{name}", "v1")[1]) == good
    call("sync_delete", "DELETE", f"syncs/{name}", params={"name": name})


@pytest.mark.parametrize(("name", "body", "status", "said"), [
    ("appsync6", {"tag": "v1"}, 400, "body"),
    ("appsync6", ["v1", "v1-1"], 400, "body"),
    ("appsync6", {"tag": "v1", "to": "latest"}, 400, "not one of its promotion tags"),
    ("appsync6", {"tag": "v1", "to": "v1-../../../etc"}, 400, "rollback to: 'v1-../../../etc' is not a tag"),
    ("appsync6", {"tag": "v1", "to": "v1-x@sha256:" + "0" * 64}, 400, "is not a tag"),
    ("appsync6", {"tag": "v1/../x", "to": "v1-1"}, 400, "rollback tag:"),
    ("appsync6", {"tag": "v1", "to": "v1-19990101000000"}, 404, "v1-19990101000000"),
    ("nosuchsync", {"tag": "v1", "to": "v1-1"}, 404, "nosuchsync"),
])
def test_a_bad_or_hostile_rollback_is_refused_before_anything_moves(app, registry, registry_b, name, body, status,
                                                                    said):
    call("sync_put", "PUT", "syncs/appsync6", definition(registry, registry_b, "appsync6"),
         params={"name": "appsync6"})
    c.push(registry_b.url, "base/appsync6", c.oci_image([c.random_layer(2_000, 73)]), tag="v1")
    before = c.get_manifest(registry_b.url, "base/appsync6", "v1")
    resp = call("sync_rollback", "POST", f"syncs/{name}/rollback", body, params={"name": name})
    assert resp.status_code == status, resp.get_body()
    assert said in json.loads(resp.get_body())["error"]["message"]
    assert c.get_manifest(registry_b.url, "base/appsync6", "v1") == before  # the stable tag did not move
    assert c.list_tags(registry_b.url, "base/appsync6") == ["v1"]
