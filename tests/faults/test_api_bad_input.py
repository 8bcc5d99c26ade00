"""Hostile and malformed input to the HTTP API: every answer is ARM-shaped, names the field or the
resource, and is never a 500 or a 503 for the caller's own mistake.

Names that reach for a path (``/``, ``..``) and bodies made to exhaust the parser are attacks; the
other mistakes are bad input."""

from __future__ import annotations

import json

import pytest

from tests.app.api import acr_body, assert_error, call, get_run, put_export, put_run


def attack(*values):
    return [pytest.param(value, marks=pytest.mark.attack) for value in values]


def bad_input(*values):
    return [pytest.param(value, marks=pytest.mark.bad_input) for value in values]


@pytest.mark.parametrize("name", [*attack("a/b", "../../x", ".."), *bad_input("x" * 60, "run\n", "ab", "rün-name")])
@pytest.mark.parametrize("collection", ["exportPipelines", "importPipelines"])
def test_names_that_cannot_exist_are_404_not_503(app_env, collection, name):
    kind = collection.removesuffix("Pipelines")
    assert_error(call(f"{kind}_pipeline_get", "GET", f"{collection}/x", params={"name": name}), 404, collection)
    assert call(f"{kind}_pipeline_delete", "DELETE", f"{collection}/x", params={"name": name}).status_code == 204


@pytest.mark.parametrize("name", [*attack("a/b", ".."), *bad_input("run\n")])
def test_run_names_that_cannot_exist_are_404(app_env, client, name):
    assert_error(get_run(client, name), 404, "pipelineRuns")


@pytest.mark.parametrize("name", [*attack("bad/name", ".."), *bad_input("name\n", "ab")])
def test_put_with_a_bad_name_is_400_naming_it(app_env, name):
    assert_error(put_export(name), 400, "name")


@pytest.mark.attack
def test_deeply_nested_json_is_400_not_500(app_env, uname):
    raw = b"[" * 200_000 + b"]" * 200_000
    assert_error(call("export_pipeline_put", "PUT", f"exportPipelines/{uname}", raw=raw, params={"name": uname}),
                 400, "body")


@pytest.mark.attack
def test_a_body_past_the_cap_is_400(app_env, uname):
    raw = json.dumps({"properties": {"padding": "x" * (2 * 1024 * 1024)}}).encode()
    assert_error(call("export_pipeline_put", "PUT", f"exportPipelines/{uname}", raw=raw, params={"name": uname}),
                 400, "body", "larger")


@pytest.mark.bad_input
def test_too_many_artifacts_are_refused_at_put_not_later(app_env, uname, client, runner, monkeypatch):
    monkeypatch.setenv("FERRY_MAX_ARTIFACTS", "10000")
    assert put_export(uname).status_code == 201
    body = acr_body("pipelineRun-export.json", uname)
    body["properties"]["request"]["artifacts"] = [f"repo/a{i}:v1" for i in range(10_001)]
    assert_error(put_run(client, uname, body), 400, "properties.request.artifacts", "10000")
    assert runner.instances() == []
