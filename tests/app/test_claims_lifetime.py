"""Secrets at rest live no longer than their owner: a pipeline's credentials go when it is
deleted, a deleted run's plan goes with it, and the sweep removes what a crash left behind."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from api.claims_sweep import sweep_claims
from ferry.azure.claims import claim_store
from ferry.errors import BlobNotFoundError
from ferry.settings import Settings
from tests.app.api import HOLDS, acr_body, call, js, put_export, put_run


def claims():
    return claim_store(Settings.from_env())


def test_deleting_a_pipeline_deletes_its_password(app_env, uname):
    body = acr_body("exportPipeline.json")
    body["properties"]["source"] = {"registryUri": "src.example.com",
                                    "credentials": {"username": "u", "password": "GOESAWAY"}}
    ref = js(put_export(uname, body))["properties"]["source"]["credentialsRef"]
    assert claims().get_json(ref)["password"] == "GOESAWAY"
    assert call("export_pipeline_delete", "DELETE", f"exportPipelines/{uname}", params={"name": uname}).status_code \
        == 200
    with pytest.raises(BlobNotFoundError):
        claims().get_json(ref)


def test_deleting_a_running_run_deletes_its_plan(app_env, uname, client, runner):
    assert put_export(uname).status_code == 201
    HOLDS[uname] = hold = threading.Event()
    try:
        assert put_run(client, uname, acr_body("pipelineRun-export.json", uname)).status_code == 202
        [instance] = runner.instances()
        claims().put_json(f"runs/{instance.instance_id}/plan.json", {"plan": 1})  # what plan_job keeps
        claims().put_json(f"runs/{instance.instance_id}x/plan.json", {"other": 1})  # another run's
        assert call("pipeline_run_delete", "DELETE", f"pipelineRuns/{uname}", client=client,
                    params={"name": uname}).status_code == 200
    finally:
        hold.set()
    with pytest.raises(BlobNotFoundError):
        claims().get_json(f"runs/{instance.instance_id}/plan.json")
    assert claims().get_json(f"runs/{instance.instance_id}x/plan.json") == {"other": 1}


def test_the_sweep_keeps_a_running_runs_claims(app_env, uname, client, runner, monkeypatch):
    monkeypatch.setenv("FERRY_CLAIMS_MAX_AGE_HOURS", "0.0001")  # a third of a second
    assert put_export(uname).status_code == 201
    HOLDS[uname] = hold = threading.Event()
    try:
        assert put_run(client, uname, acr_body("pipelineRun-export.json", uname)).status_code == 202
        [instance] = runner.instances()
        live, dead = f"runs/{instance.instance_id}/plan.json", "runs/run-gone-00000000/plan.json"
        claims().put_json(live, {})
        claims().put_json(dead, {})
        claims().put_json("credentials/importImage/leftover", {"password": "x"})
        asyncio.run(asyncio.sleep(0.6))
        deleted = asyncio.run(sweep_claims(client))
    finally:
        hold.set()
    assert dead in deleted and "credentials/importImage/leftover" in deleted
    assert live not in deleted and claims().get_json(live) == {}
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    assert live not in claims().older_than(cutoff)  # nothing here is an hour old
