"""The function metadata the Python worker indexes from function_app.py, and the health route itself."""

import json

import azure.functions as func
import pytest

import function_app


@pytest.fixture(scope="module")
def functions() -> dict[str, func.decorators.function_app.Function]:
    # get_functions() records names for its duplicate check on the app object, so a second
    # call on the same app raises "does not have a unique function name": call it once.
    fns = function_app.app.get_functions()
    return {fn.get_function_name(): fn for fn in fns}


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
