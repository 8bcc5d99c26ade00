"""A sync whose target is an export pipeline, by name: a scheduled incremental transfer into that
pipeline's container. Two ticks through the app's orchestration with one new tag between them;
the second archive carries only the new blobs, and the other side's blob trigger imports each one.
A pipeline that is not there, or a target that mixes kinds, is refused at PUT naming the field."""

from __future__ import annotations

import json
import time
import uuid

import azure.functions as func
import pytest

import function_app
from runner import LocalDurableClient, LocalOrchestrationRunner
from tests.app.test_import_trigger import FUNCTIONS, env, fire, put_import_pipeline, runs_for  # noqa: F401
from tests.app.test_syncs_api import call
from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


def put_export_pipeline(name: str, landing, registry) -> None:
    body = {"properties": {"source": {"registryUri": registry.host},
                           "target": {"type": "AzureStorageBlobContainer", "uri": landing.url,
                                      "storageAccessMode": "ConnectionString"}}}
    req = func.HttpRequest(method="PUT", url=f"http://localhost/api/exportPipelines/{name}",
                           body=json.dumps(body).encode(), route_params={"name": name})
    response = FUNCTIONS["export_pipeline_put"].get_user_function()(req)
    assert response.status_code in (200, 201), response.get_body()


def sync_body(registry, target: dict) -> dict:
    return {"properties": {"source": {"registryUri": registry.host, "repository": "incr/app"},
                           "tags": {"semver": ">=1.0.0"}, "target": target,
                           "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}]}}


def tick(runner, client, name: str) -> dict:
    assert call("sync_run_start", "POST", f"syncs/{name}/run", client=client, params={"name": name}).status_code == 202
    result = runner.wait(f"sync-{name}", 60)
    assert result.status == "Completed", result.error
    return result.output


def test_a_sync_into_an_export_pipeline_ships_only_what_is_new_and_the_trigger_imports_it(
        env, registry, registry_b, capsys):  # noqa: F811
    pipeline, name, landed = (f"{p}{uuid.uuid4().hex[:8]}" for p in ("exp", "incr", "land"))
    put_export_pipeline(pipeline, env, registry)
    put_import_pipeline(landed, env, registry_b, prefix=landed)
    assert call("sync_put", "PUT", f"syncs/{name}", sync_body(registry, {"exportPipeline": pipeline}),
                params={"name": name}).status_code == 201
    base = c.random_layer(100_000, 9101)
    v1 = c.oci_image([base, c.random_layer(10_000, 9102)], env=["BACKGROUND_COLOR=Blue"], seed=11)
    v2 = c.oci_image([base, c.random_layer(12_000, 9103)], env=["BACKGROUND_COLOR=Blue"], seed=12)
    c.push(registry.url, "incr/app", v1, tag="1.0.0")
    with LocalOrchestrationRunner(function_app.app) as runner:
        client = LocalDurableClient(runner, wait=True)
        first = tick(runner, client, name)
        time.sleep(1.1)  # run ids are the tick's second
        c.push(registry.url, "incr/app", v2, tag="1.1.0")
        second = tick(runner, client, name)
        assert {t["tag"]: t["status"] for t in second["tags"]} == {"1.0.0": "unchanged", "1.1.0": "promoted"}
        archives = [f"{env.url}/{name}-{run['run_id']}.tar" for run in (first, second)]
        assert [t["promoted"] for t in first["tags"]] == [[archives[0]]]
        carried = [set(run_ferry(capsys, "inspect", a, "--connection-string", env.connection,
                                 "--json").json()["blob_digests"]) for a in archives]
        assert base.digest in carried[0] and base.digest not in carried[1]  # the shared layer shipped once
        assert {b.digest for b in v2.blobs} - {b.digest for b in v1.blobs} <= carried[1]
        for archive in archives:  # the other side: its blob trigger imports each archive as it lands
            fire(env, archive.rsplit("/", 1)[1], client)
        imports = runs_for(runner)
        assert len(imports) == 2
        for run in imports:
            assert runner.wait(run.instance_id, 60).output["status"] == "Succeeded"
    assert skopeo_raw(registry_b.host, f"{landed}/incr/app", "1.0.0") == v1.raw
    assert skopeo_raw(registry_b.host, f"{landed}/incr/app", "1.1.0") == v2.raw


@pytest.mark.parametrize(("target", "said"), [
    ({"exportPipeline": "nosuchpipeline"}, "properties.target.exportPipeline: no export pipeline named"),
    ({"exportPipeline": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/"
                        "importPipelines/imp1x"}, "properties.target.exportPipeline: must name an export pipeline"),
    ({"exportPipeline": "../../x"}, "properties.target.exportPipeline"),
    ({"exportPipeline": "pipe1", "registryUri": "127.0.0.1:5000"}, "properties.target: exportPipeline is a target"),
])
def test_a_bad_export_pipeline_target_is_refused_naming_the_field(env, registry, target, said):  # noqa: F811
    resp = call("sync_put", "PUT", "syncs/badincr", sync_body(registry, target), params={"name": "badincr"})
    assert resp.status_code == 400 and said in json.loads(resp.get_body())["error"]["message"], resp.get_body()
    assert call("sync_get", "GET", "syncs/badincr", params={"name": "badincr"}).status_code == 404
