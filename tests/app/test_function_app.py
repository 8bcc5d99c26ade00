"""The function metadata the Python worker indexes from function_app.py, and the health route itself."""

import json
from pathlib import Path

import azure.functions as func
import pytest

from tests.helpers import app_functions


@pytest.fixture(scope="module")
def functions() -> dict[str, func.decorators.function_app.Function]:
    # get_functions() may be called once per app: tests share one call (tests/helpers.py).
    return app_functions()


def _trigger_dict(fn: func.decorators.function_app.Function) -> dict:
    # get_raw_bindings() is the JSON the worker sends to the host: enums are written by
    # *name* (authLevel "ANONYMOUS", methods ["GET"]) and None fields such as dataType are dropped.
    bindings = [json.loads(raw) for raw in fn.get_raw_bindings()]
    triggers = [b for b in bindings if b["type"] == "httpTrigger"]
    assert len(triggers) == 1, bindings
    return triggers[0]


def test_health_is_indexed_as_anonymous_get(functions):
    assert "health" in functions
    trigger_obj = functions["health"].get_trigger()
    assert trigger_obj is not None
    assert trigger_obj.auth_level is func.AuthLevel.ANONYMOUS
    trigger = _trigger_dict(functions["health"])
    assert trigger["route"] == "health"
    assert trigger["methods"] == ["GET"]
    assert trigger["authLevel"] == "ANONYMOUS"
    assert trigger["direction"] == "IN"
    assert trigger["name"] == "req"


def test_health_has_http_output(functions):
    bindings = [json.loads(raw) for raw in functions["health"].get_raw_bindings()]
    outputs = [b for b in bindings if b["type"] == "http"]
    assert outputs == [{"direction": "OUT", "type": "http", "name": "$return"}]


def test_health_returns_ok(functions):
    handler = functions["health"].get_user_function()
    resp = handler(func.HttpRequest(method="GET", url="/api/health", body=b""))
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    body = json.loads(resp.get_body())
    assert body["status"] == "ok"
    assert isinstance(body["version"], str) and body["version"]


PIPELINE_ROUTES = {
    "export_pipeline_put": ("exportPipelines/{name}", "PUT"),
    "export_pipeline_get": ("exportPipelines/{name}", "GET"),
    "export_pipeline_delete": ("exportPipelines/{name}", "DELETE"),
    "export_pipeline_list": ("exportPipelines", "GET"),
    "import_pipeline_put": ("importPipelines/{name}", "PUT"),
    "import_pipeline_get": ("importPipelines/{name}", "GET"),
    "import_pipeline_delete": ("importPipelines/{name}", "DELETE"),
    "import_pipeline_list": ("importPipelines", "GET"),
    "pipeline_run_put": ("pipelineRuns/{name}", "PUT"),
    "pipeline_run_get": ("pipelineRuns/{name}", "GET"),
    "pipeline_run_delete": ("pipelineRuns/{name}", "DELETE"),
    "pipeline_run_list": ("pipelineRuns", "GET"),
    "import_image": ("importImage", "POST"),
}
DURABLE_CLIENT_FUNCTIONS = {"pipeline_run_put", "pipeline_run_get", "pipeline_run_delete", "pipeline_run_list",
                            "import_image"}


@pytest.mark.parametrize("name", sorted(PIPELINE_ROUTES))
def test_pipeline_api_routes_are_indexed_at_function_level(functions, name):
    route, method = PIPELINE_ROUTES[name]
    assert name in functions
    trigger = _trigger_dict(functions[name])
    assert trigger["route"] == route
    assert trigger["methods"] == [method]
    assert trigger["authLevel"] == "FUNCTION"  # the app's default, inherited
    bindings = [json.loads(raw) for raw in functions[name].get_raw_bindings()]
    clients = [b for b in bindings if b["type"] == "durableClient"]
    if name in DURABLE_CLIENT_FUNCTIONS:
        assert clients == [{"direction": "IN", "type": "durableClient", "name": "client"}]
    else:
        assert clients == []


def test_each_route_and_method_has_exactly_one_function(functions):
    seen: dict[tuple[str, str], str] = {}
    for name, fn in functions.items():
        trigger = [json.loads(raw) for raw in fn.get_raw_bindings() if json.loads(raw)["type"] == "httpTrigger"]
        for t in trigger:
            for method in t.get("methods") or []:
                key = (t["route"].lower(), method)
                assert key not in seen, f"{name} and {seen.get(key)} both serve {key}"
                seen[key] = name


def test_orchestrations_and_activities_are_indexed(functions):
    def trigger_type(name: str) -> str:
        return functions[name].get_trigger().get_dict_repr()["type"]

    orchestrators = {"copy_job", "copy_batches", "pipeline_run", "image_import", "blob_copy", "transfer", "sync_run"}
    activities = {"plan_job", "transfer_batch", "finish_job", "cleanup_claims",
                  "start_blob_copy", "blob_copy_status", "relay_blob_copy", "acr_import_image", "sync_tick"}
    assert {n for n in functions if trigger_type(n) == "orchestrationTrigger"} == orchestrators
    assert {n for n in functions if trigger_type(n) == "activityTrigger"} == activities
    assert {n for n in functions if trigger_type(n) == "blobTrigger"} == {"import_trigger"}


def test_app_imports_without_dev_dependencies():
    """The host installs requirements.txt only: importing the app must not need pytest, the test
    harness, the local runner or any other development-only package."""
    import subprocess
    import sys

    blocked = ["pytest", "oras", "bcrypt", "psutil", "tests", "runner", "bench", "demo"]
    script = (
        "import sys, importlib.abc\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError('dev-only module imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import function_app\n"
        "print(len(function_app.app.get_functions()))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert int(completed.stdout.strip()) >= 20


def test_local_settings_example_lists_every_app_setting_the_code_reads():
    import re
    from pathlib import Path

    from ferry.settings import CLI_ONLY, all_setting_names

    root = Path(__file__).resolve().parents[2]
    names = all_setting_names() - CLI_ONLY
    # Every FERRY_* literal anywhere in the app is one of the settings module's names...
    sources = [p for d in ("ferry", "api", "orchestrations", "activities") for p in (root / d).rglob("*.py")]
    literals = {name for p in sources for name in re.findall(r'"(FERRY_[A-Z_]+)"', p.read_text())}
    assert literals and literals <= all_setting_names(), sorted(literals - all_setting_names())
    # ...and every one the app reads is in the example settings file.
    example = json.loads((root / "local.settings.json.example").read_text())["Values"]
    assert "FERRY_REGISTRY" in names and "AzureWebJobsStorage" in names
    assert names <= set(example), sorted(names - set(example))
    assert example["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_claims_sweep_is_a_timer_on_its_setting_with_a_durable_client(functions):
    bindings = {b["type"]: b for b in (json.loads(raw) for raw in functions["claims_sweep"].get_raw_bindings())}
    assert bindings["timerTrigger"]["schedule"] == "%FERRY_CLAIMS_SWEEP_SCHEDULE%"
    assert bindings["timerTrigger"]["direction"] == "IN"
    assert "durableClient" in bindings
    example = json.loads((Path(__file__).resolve().parents[2] / "local.settings.json.example").read_text())
    schedule = example["Values"]["FERRY_CLAIMS_SWEEP_SCHEDULE"]
    assert len(schedule.split()) == 6  # NCRONTAB has seconds


def test_import_trigger_binds_a_blob_client_not_the_blob(functions):
    """Indexed as the worker indexes it: the trigger's parameter is the SDK type, so the binding
    asks the host for a deferred (client) binding and the archive's bytes are never loaded."""
    import inspect
    import types

    from azurefunctions.extensions.base import meta, utils
    from azurefunctions.extensions.bindings.blob import BlobClient

    fn = functions["import_trigger"]
    pytype = inspect.signature(fn.get_user_function()).parameters["archive"].annotation
    assert pytype is BlobClient and meta._ConverterMeta.check_supported_type(pytype)
    raw, _ = utils.get_raw_bindings(fn, {"archive": types.SimpleNamespace(pytype=pytype)})
    trigger = next(b for b in map(json.loads, raw) if b["type"] == "blobTrigger")
    assert trigger["properties"] == {"SupportsDeferredBinding": True}
    assert trigger["connection"] == "FERRY_IMPORT_STORAGE" and trigger["path"] == "%FERRY_IMPORT_BLOB_PATH%"
