"""No secret appears in logs, HTTP responses or orchestration history: registry passwords given
to pipelines and importImage travel only through claims, and reach the registry."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import azure.functions as func
from azure.storage.blob import BlobServiceClient

import function_app
from runner import LocalDurableClient, LocalOrchestrationRunner
from runner.client import acall_client_function
from tests.harness import content as c
from tests.helpers import app_functions, run_ferry, skopeo_raw

FUNCTIONS = app_functions()


def call(name: str, method: str, path: str, body, *, client=None, params=None) -> func.HttpResponse:
    req = func.HttpRequest(method=method, url=f"http://localhost:7071/api/{path}", route_params=params or {},
                           body=b"" if body is None else json.dumps(body).encode())
    fn = FUNCTIONS[name]
    if client is not None:
        return asyncio.run(acall_client_function(fn, client=client, req=req))
    return fn.get_user_function()(req)


def everything_visible(runner: LocalOrchestrationRunner, responses: list[func.HttpResponse], caplog) -> str:
    """Logs, response bodies and each instance's input, output, custom status and history."""
    parts = [caplog.text] + [r.get_body().decode(errors="replace") for r in responses]
    for record in runner.instances():
        result = runner.wait(record.instance_id, 120)
        parts += [json.dumps(result.input, default=str), json.dumps(result.output, default=str),
                  json.dumps(result.custom_status, default=str), json.dumps(result.history, default=str)]
    return "\n".join(parts)


def test_pipeline_credentials_reach_the_registry_but_nowhere_else(azurite, registry, auth_registry, content,
                                                                  monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    container = f"sec-{uuid.uuid4().hex[:8]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(container)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")  # the test services; hostile hosts stay refused
    monkeypatch.setenv("FERRY_STORAGE_CONNECTION_STRINGS", json.dumps([azurite.connection_string("acct1")]))
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    url = f"{azurite.blob_endpoint('acct1')}/{container}"
    c.push(registry.url, "secret/app", content["helm"], tag="v1")
    assert run_ferry(capsys, "export", f"{registry.host}/secret/app:v1", "--to", f"{url}/s.tar",
                     "--connection-string", azurite.connection_string("acct1")).code == 0
    name = f"sec{uuid.uuid4().hex[:8]}"
    responses = []
    pipeline = {"properties": {"source": {"type": "AzureStorageBlobContainer", "uri": url,
                                          "storageAccessMode": "ConnectionString"},
                               "target": {"registryUri": auth_registry.host,
                                          "credentials": {"username": auth_registry.username,
                                                          "password": auth_registry.password}}}}
    responses.append(call("import_pipeline_put", "PUT", f"importPipelines/{name}", pipeline, params={"name": name}))
    assert responses[-1].status_code == 201, responses[-1].get_body()
    with LocalOrchestrationRunner(function_app.app) as runner:
        client = LocalDurableClient(runner, wait=True)
        run = {"properties": {"request": {"pipelineResourceId": name,
                                          "source": {"type": "AzureStorageBlob", "name": "s.tar"}}}}
        responses.append(call("pipeline_run_put", "PUT", f"pipelineRuns/{name}", run, client=client,
                              params={"name": name}))
        responses.append(call("pipeline_run_get", "GET", f"pipelineRuns/{name}", None, client=client,
                              params={"name": name}))
        assert json.loads(responses[-1].get_body())["properties"]["response"]["status"] == "Succeeded"
        visible = everything_visible(runner, responses, caplog)
    # The password worked (the target requires it) ...
    assert skopeo_raw(auth_registry.host, "secret/app", "v1", auth_registry.credentials) == content["helm"].raw
    # ... and shows up nowhere: not in logs, responses, orchestration input, output or history.
    assert auth_registry.password not in visible
    assert "credentialsRef" in visible  # what travels instead


def test_denied_credentials_fail_clearly_without_echoing_them(azurite, registry, auth_registry, content,
                                                              monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string("acct1"))
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")  # the test services; hostile hosts stay refused
    monkeypatch.setenv("FERRY_REGISTRY", registry.host)
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    secret = f"wrong-{uuid.uuid4().hex}"
    with LocalOrchestrationRunner(function_app.app) as runner:
        client = LocalDurableClient(runner, wait=True)
        response = call("import_image", "POST", "importImage", {
            "source": {"registryUri": auth_registry.host, "sourceImage": "secret/none:v1",
                       "credentials": {"username": auth_registry.username, "password": secret}},
            "targetTags": ["copied/none:v1"]}, client=client)
        assert response.status_code == 202, response.get_body()
        [instance] = [i for i in runner.instances() if i.name == "image_import"]
        output = runner.wait(instance.instance_id, 120).output
        visible = everything_visible(runner, [response], caplog)
    assert output["status"] == "Failed"
    assert auth_registry.host in output["pipelineRunErrorMessage"]
    assert "401" in output["pipelineRunErrorMessage"] or "credentials" in output["pipelineRunErrorMessage"]
    assert secret not in visible
    assert c.list_tags(registry.url, "copied/none") == []
