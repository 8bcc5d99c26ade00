"""importImage handed to ACR's own importImage (``FERRY_ACR_IMPORT_HANDOFF`` +
``FERRY_TARGET_ACR_RESOURCE_ID``): ``POST /api/importImage`` through the app's real orchestration and
activities (local runner, Azurite for tables and claims), with the real ``ContainerRegistryManagementClient``
and its ARMPolling talking to the HTTPS ARM stand-in (tests/harness/arm.py), tokens from the managed
identity stand-in. Without the settings, Ferry copies itself and ARM's importImage is never called.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from ferry.azure.claims import claim_store
from ferry.errors import BlobNotFoundError
from ferry.settings import Settings
from runner.client import LocalDurableClient, acall_client_function
from runner.replay import LocalOrchestrationRunner
from tests.harness import content as c
from tests.harness.arm import ArmStandIn
from tests.helpers import app_functions, skopeo_raw

SUB = "11111111-2222-3333-4444-555555555555"
PASSWORD = "HANDOFFPASSWORD42"
FUNCTION_KEY = "FUNCTIONKEYhandoff"


@pytest.fixture
def app_env(azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = azurite.connection_string("acct1")
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", "127.0.0.1")  # the test services; hostile hosts stay refused
    for name in ("FERRY_CLAIMS_CONNECTION", "FERRY_CLAIMS_DIR", "FERRY_TARGET_ACR_RESOURCE_ID",
                 "FERRY_ACR_IMPORT_HANDOFF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FERRY_REGISTRY", "targetacr.azurecr.io")
    return conn


@pytest.fixture
def target(app_env: str, arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """The target ACR, known to ARM, with the handoff turned on; returns its resource id."""
    rid = arm.add_registry(SUB, "target-rg", "targetacr", "targetacr.azurecr.io")
    monkeypatch.setenv("FERRY_TARGET_ACR_RESOURCE_ID", rid)
    monkeypatch.setenv("FERRY_ACR_IMPORT_HANDOFF", "true")
    return rid


@pytest.fixture
def local() -> Iterator[LocalOrchestrationRunner]:
    import function_app

    with LocalOrchestrationRunner(function_app.app) as runner:
        yield runner


def post_import_image(runner: LocalOrchestrationRunner, body: Any) -> func.HttpResponse:
    req = func.HttpRequest(method="POST", url=f"http://localhost:7071/api/importImage?code={FUNCTION_KEY}",
                           body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return asyncio.run(acall_client_function(app_functions()["import_image"], client=LocalDurableClient(runner),
                                             req=req))


def run_import(runner: LocalOrchestrationRunner, body: Any) -> tuple[Any, dict[str, Any]]:
    """POST importImage, wait for its orchestration; (instance record, output)."""
    resp = post_import_image(runner, body)
    assert resp.status_code == 202, resp.get_body()
    instance_id = json.loads(resp.get_body())["id"]
    result = runner.wait(instance_id, 120)
    assert result.status == "Completed", result.error
    record = runner.get(instance_id)
    assert record is not None
    return record, result.output


def test_handoff_calls_acr_import_image_with_the_request(target: str, arm: ArmStandIn,
                                                         local: LocalOrchestrationRunner, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"source": {"registryUri": "https://docker.io", "sourceImage": "library/hello-world:latest",
                       "credentials": {"username": "me", "password": PASSWORD}},
            "targetTags": ["hello:v1", "mirror/hello"], "untaggedTargetRepositories": ["untagged/hello"],
            "mode": "Force"}
    record, output = run_import(local, body)

    assert record.input["handoff"]["target_resource_id"] == target
    assert PASSWORD not in json.dumps(record.input)  # only the claim's name travels
    # The caller's one-time credentials are gone once the run ended.
    ref = record.input["handoff"]["credentials_ref"]
    with pytest.raises(BlobNotFoundError):
        claim_store(Settings.from_env()).get_json(ref)
    [sent] = arm.imports
    assert sent["registry"] == target and sent["api-version"].startswith("20")
    assert sent["body"] == {
        "source": {"registryUri": "docker.io", "sourceImage": "library/hello-world:latest",
                   "credentials": {"username": "me", "password": PASSWORD}},
        "targetTags": ["hello:v1", "mirror/hello:latest"],
        "untaggedTargetRepositories": ["untagged/hello"],
        "mode": "Force",
    }
    # ARM's asynchronous pattern was followed: the status polled until Succeeded, then the result.
    statuses = [r for r in arm.requests if "/operationStatuses/" in r]
    assert len(statuses) == 2 and any("/operationResults/" in r for r in arm.requests)
    assert set(arm.tokens_seen) == {arm.token}

    assert output["status"] == "Succeeded", output
    assert output["importedArtifacts"] == ["hello:v1", "mirror/hello:latest", "untagged/hello"]
    assert output["pipelineRunErrorMessage"] is None
    assert PASSWORD not in json.dumps(output) and PASSWORD not in caplog.text


def test_handoff_passes_a_source_resource_id_as_given(target: str, arm: ArmStandIn,
                                                      local: LocalOrchestrationRunner) -> None:
    source = arm.add_registry(SUB, "source-rg", "sourceacr", "sourceacr.azurecr.io")
    arm.import_polls = 0
    _, output = run_import(local, {"source": {"resourceId": source, "sourceImage": "samples/app:1"}})
    [sent] = arm.imports
    assert sent["body"]["source"] == {"resourceId": source, "sourceImage": "samples/app:1"}
    assert sent["body"]["targetTags"] == ["samples/app:1"] and sent["body"]["mode"] == "NoForce"
    assert output["status"] == "Succeeded" and output["importedArtifacts"] == ["samples/app:1"], output


def test_acr_failure_is_a_readable_message_without_secrets(target: str, arm: ArmStandIn,
                                                           local: LocalOrchestrationRunner, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    arm.import_error = {"code": "NotFound",
                        "message": f"Source image docker.io/library/nope:9 not found (user me, password {PASSWORD})"}
    body = {"source": {"registryUri": "docker.io", "sourceImage": "library/nope:9",
                       "credentials": {"username": "me", "password": PASSWORD}}}
    _, output = run_import(local, body)

    assert output["status"] == "Failed" and output["importedArtifacts"] == []
    message = output["pipelineRunErrorMessage"]
    assert "targetacr" in message and "NotFound" in message and "library/nope:9 not found" in message, message
    assert PASSWORD not in json.dumps(output) and PASSWORD not in caplog.text
    assert len(arm.imports) == 1  # a permanent failure is not retried


def test_unknown_target_acr_fails_naming_it(target: str, arm: ArmStandIn, local: LocalOrchestrationRunner,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    missing = target.replace("targetacr", "missingacr")
    monkeypatch.setenv("FERRY_TARGET_ACR_RESOURCE_ID", missing)
    _, output = run_import(local, {"source": {"registryUri": "docker.io", "sourceImage": "library/hello:1"}})
    assert output["status"] == "Failed" and "missingacr" in output["pipelineRunErrorMessage"], output
    assert arm.imports == []


def test_handoff_without_a_resource_id_is_a_configuration_error(app_env: str, local: LocalOrchestrationRunner,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_ACR_IMPORT_HANDOFF", "true")
    resp = post_import_image(local, {"source": {"registryUri": "docker.io", "sourceImage": "library/hello:1"}})
    assert resp.status_code == 500
    assert "FERRY_TARGET_ACR_RESOURCE_ID" in json.loads(resp.get_body())["error"]["message"]
    assert local.instances() == []


def test_without_the_handoff_ferry_copies_itself(app_env: str, arm: ArmStandIn, local: LocalOrchestrationRunner,
                                                 registry, registry_b, content, unique_repo: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The target's resource id alone does not hand off: FERRY_ACR_IMPORT_HANDOFF must be true.
    monkeypatch.setenv("FERRY_TARGET_ACR_RESOURCE_ID", arm.add_registry(SUB, "rg", "targetacr", registry_b.host))
    monkeypatch.setenv("FERRY_REGISTRY", registry_b.host)
    repo = c.push_samples(registry.url, {"docker": content["docker"]}, prefix=unique_repo)["docker"]
    record, output = run_import(local, {"source": {"registryUri": registry.host, "sourceImage": f"{repo}:v1",
                                                   "credentials": {"username": "any", "password": PASSWORD}},
                                        "targetTags": [f"{repo}:copied"]})
    assert "handoff" not in record.input
    ref = record.input["job"]["source"]["credentialsRef"]
    with pytest.raises(BlobNotFoundError):  # deleted when the run ended
        claim_store(Settings.from_env()).get_json(ref)
    assert output["status"] == "Succeeded", output
    assert skopeo_raw(registry_b.host, repo, "copied") == content["docker"].raw
    assert arm.imports == [] and not any(r.startswith("POST ") for r in arm.requests)
