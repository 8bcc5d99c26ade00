"""The HTTP API as the worker calls it, shared by tests/app and tests/faults: real
``func.HttpRequest`` objects, tables in a real Azurite, and the durable client backed by the local
runner (``runner.client.LocalDurableClient``).

The runner here hosts small test orchestrators registered under the names the API starts
(``pipeline_run``, ``image_import``): they record the input contract, report progress, can be held
running, and return the output contract. The real orchestrations are tested elsewhere.

Fixtures (imported by the conftest of each layer that calls the API): ``runner``, ``client``,
``app_env`` (app settings on the session's Azurite, an allow-list of loopback and example hosts)
and ``uname`` (a pipeline/run name unique to the test). Helpers: ``call``, ``js``, ``acr_body``,
``put_export``, ``put_import``, ``put_run``, ``get_run``, ``export_run_body``, ``import_image``,
``assert_error``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from api.import_image import bp as import_image_bp
from api.pipelines import bp as pipelines_bp
from api.runs import bp as runs_bp
from api.sync_verdicts import bp as sync_verdicts_bp
from api.syncs import bp as syncs_bp
from ferry.egress import AZURE_PUBLIC
from runner.client import LocalDurableClient, acall_client_function
from runner.functions import iter_functions
from runner.replay import LocalOrchestrationRunner

DATA = Path(__file__).resolve().parents[1] / "data" / "acr"
FUNCTIONS = {fn.get_function_name(): fn for bp in (pipelines_bp, runs_bp, import_image_bp, syncs_bp, sync_verdicts_bp)
             for fn in iter_functions(bp)}
CLIENT_FUNCTIONS = {"pipeline_run_put", "pipeline_run_get", "pipeline_run_delete", "pipeline_run_list",
                    "import_image"}
FUNCTION_KEY = "FUNCTIONKEYdonotecho"
SUB = "00000000-0000-0000-0000-000000000000"


def acr_body(name: str, pipeline: str | None = None) -> dict[str, Any]:
    text = (DATA / name).read_text()
    return json.loads(text.replace("PIPELINE", pipeline) if pipeline else text)


# --------------------------------------------------------------------------- test orchestrations

HOLDS: dict[str, threading.Event] = {}


def hold(run_name: str) -> str:
    event = HOLDS.get(run_name)
    if event is not None:
        event.wait(30)
    return run_name


def fake_pipeline_run(context: Any) -> Any:
    spec = context.get_input()
    context.set_custom_status({"stage": spec["kind"], "percentage": 40})
    yield context.call_activity("hold", spec["runName"])
    refs = spec["job"]["select"][0].get("refs") or []  # an export's artifacts; an import selects its archive
    if "fail/me" in refs:
        raise Exception("blob refused: https://acct.blob.core.windows.net/c/x?sv=2024&sig=SECRETSIGNATURE")
    artifacts = refs or ["from/archive:1"]
    return {"status": "Succeeded", "importedArtifacts": list(artifacts), "catalogDigest": "sha256:" + "c" * 64,
            "pipelineRunErrorMessage": None,
            "artifacts": [{"source": a, "target": a, "status": "copied"} for a in artifacts]}


def fake_image_import(context: Any) -> Any:
    yield context.call_activity("hold", "importImage")
    return {"status": "Succeeded", "importedArtifacts": [], "catalogDigest": None, "pipelineRunErrorMessage": None,
            "artifacts": []}


@pytest.fixture
def runner() -> Iterator[LocalOrchestrationRunner]:
    with LocalOrchestrationRunner(orchestrators={"pipeline_run": fake_pipeline_run,
                                                 "image_import": fake_image_import},
                                  activities={"hold": hold}) as local:
        yield local
    for event in HOLDS.values():
        event.set()
    HOLDS.clear()


@pytest.fixture
def client(runner: LocalOrchestrationRunner) -> LocalDurableClient:
    return LocalDurableClient(runner)


@pytest.fixture
def app_env(azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = azurite.connection_string("acct1")
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    monkeypatch.setenv("FERRY_ALLOWED_HOSTS", ",".join([*AZURE_PUBLIC, "registry-1.docker.io", "mcr.microsoft.com",
                                                        "src.example.com", "target.example.com:5443", "127.0.0.1"]))
    monkeypatch.delenv("FERRY_CLAIMS_CONNECTION", raising=False)
    monkeypatch.setenv("FERRY_REGISTRY", "registry.example.com")
    return conn


@pytest.fixture
def uname(request: pytest.FixtureRequest) -> str:
    """A pipeline/run name unique to the test (tables are shared by the session's Azurite)."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]


def call(name: str, method: str, path: str, body: Any = None, *, client: Any = None,
         params: dict[str, str] | None = None, raw: bytes | None = None, query: str = "") -> func.HttpResponse:
    """Call function ``name`` with a real HttpRequest (the function key in the query, as clients send it;
    ``query`` adds ``&k=v`` pairs). A durable client function gets ``client``; an async one is awaited."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    req = func.HttpRequest(method=method, url=f"http://localhost:7071/api/{path}?code={FUNCTION_KEY}{query}",
                           body=data, route_params=params or {}, headers={"Content-Type": "application/json"},
                           params=dict(p.split("=", 1) for p in query.strip("&").split("&") if p))
    fn = FUNCTIONS[name]
    if name in CLIENT_FUNCTIONS or client is not None:
        assert client is not None, f"{name} needs a durable client"
        return asyncio.run(acall_client_function(fn, client=client, req=req))
    result = fn.get_user_function()(req)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def js(resp: func.HttpResponse) -> Any:
    return json.loads(resp.get_body())


def put_export(name: str, body: Any | None = None) -> func.HttpResponse:
    return call("export_pipeline_put", "PUT", f"exportPipelines/{name}",
                acr_body("exportPipeline.json") if body is None else body, params={"name": name})


def put_import(name: str, body: Any | None = None) -> func.HttpResponse:
    return call("import_pipeline_put", "PUT", f"importPipelines/{name}",
                acr_body("importPipeline.json") if body is None else body, params={"name": name})


def put_run(client: Any, name: str, body: Any) -> func.HttpResponse:
    return call("pipeline_run_put", "PUT", f"pipelineRuns/{name}", body, client=client, params={"name": name})


def get_run(client: Any, name: str) -> func.HttpResponse:
    return call("pipeline_run_get", "GET", f"pipelineRuns/{name}", client=client, params={"name": name})


def export_run_body(pipeline: str, tag: str = "1", artifacts: list[str] | None = None) -> dict[str, Any]:
    body = acr_body("pipelineRun-export.json", pipeline)
    body["properties"]["forceUpdateTag"] = tag
    if artifacts is not None:
        body["properties"]["request"]["artifacts"] = artifacts
    return body


def assert_error(resp: func.HttpResponse, status: int, *needles: str) -> str:
    assert resp.status_code == status, resp.get_body()
    error = js(resp)["error"]
    assert set(error) == {"code", "message"}
    for needle in needles:
        assert needle in error["message"], error["message"]
    return error["message"]



def import_image(client: Any, body: Any) -> func.HttpResponse:
    return call("import_image", "POST", "importImage", body, client=client)
