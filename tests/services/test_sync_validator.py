"""The external validator: Ferry POSTs the candidate, the verdict comes back in the answer. Approve,
reject (with the validator's reason), and every way of giving no verdict (an error, silence past
the timeout, an answer that is not one) refuse, saying why."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from ferry.egress import EgressDeniedError, EgressPolicy
from ferry.jobs.endpoints import JobEnvironment
from ferry.sync.definition import parse_sync
from ferry.sync.policies import evaluate, from_json
from ferry.sync.state import FileSyncState
from ferry.sync.tick import run_sync
from ferry.sync.validator import Answer, Callback
from tests.harness import content as c
from tests.harness.validator import Validator
from tests.helpers import run_ferry
from tests.netguard import forbid_network


@pytest.fixture
def validator():
    found = Validator()
    yield found
    found.server.stop()


def check(validator: Validator, timeout: int = 5) -> list[str]:
    [policy] = from_json([{"kind": "external", "url": validator.server.url, "timeoutSeconds": timeout}])
    return policy.check({"digest": "sha256:" + "d" * 64, "source": {"repository": "up/app"}, "target": {}})


@pytest.mark.parametrize(("answer", "delay", "timeout", "expected"), [
    ((200, {"verdict": "approve"}), 0, 5, None),
    ((200, {"verdict": "reject", "reason": "BACKGROUND_COLOR is RED"}), 0, 5, "rejected it: BACKGROUND_COLOR is RED"),
    ((500, {"error": "boom"}), 0, 5, "answered 500"),
    ((200, {"ok": True}), 0, 5, "gave no verdict"),
    ((200, b"<html>not json</html>"), 0, 5, "gave no verdict"),
    ((200, {"verdict": "approve"}), 2.5, 1, "no verdict within 1 s"),
    ((202, {"verdict": "pending"}), 0, 5, "answered pending, but this run takes no later verdicts"),
    ((200, {"verdict": "Approve"}), 0, 5, "gave no verdict"),
])
def test_verdicts(validator, answer, delay, timeout, expected):
    validator.answer, validator.delay = (lambda request: answer), delay
    reasons = check(validator, timeout)
    if expected is None:
        assert reasons == []
    else:
        [reason] = reasons
        assert expected in reason and "<html>" not in reason
    assert validator.requests[0]["digest"] == "sha256:" + "d" * 64 and "document" in validator.requests[0]


def test_a_huge_answer_is_cut_and_refused(validator):
    validator.answer = lambda request: (200, b'{"verdict": "approve", "pad": "' + b"x" * 200_000 + b'"}')
    [reason] = check(validator)
    assert "more than 64 KiB" in reason


def test_secrets_in_the_url_or_the_answer_never_reach_the_reason(validator):
    said = "bad\x1b[31m https://a.blob.core.windows.net/c?sv=1&sig=TOPSECRETSIG password=hunter2"
    validator.answer = lambda request: (200, {"verdict": "reject", "reason": said})
    [policy] = from_json([{"kind": "external", "url": validator.server.url + "/check?code=FUNCTIONKEY123",
                           "timeoutSeconds": 5}])
    [rejected] = policy.check({"digest": "sha256:" + "d" * 64})
    assert "TOPSECRETSIG" not in rejected and "hunter2" not in rejected and "\x1b" not in rejected
    assert rejected.startswith("the validator rejected it: bad")
    validator.answer = lambda request: (503, {"error": "down"})
    [unreachable] = policy.check({"digest": "sha256:" + "d" * 64})
    assert "FUNCTIONKEY123" not in unreachable and "answered 503" in unreachable


def test_a_sync_tick_asks_the_validator_and_keeps_the_last_good_image(registry, registry_b, validator, tmp_path,
                                                                       capsys):
    validator.answer = lambda request: ((200, {"verdict": "reject", "reason": "red is not allowed"})
                                        if request["document"]["configs"][0]["env"].get("BACKGROUND_COLOR") == "Red"
                                        else (200, {"verdict": "approve"}))
    sync_file = tmp_path / "ext.json"
    sync_file.write_text(json.dumps({"name": "ext-sync", "properties": {
        "source": {"registryUri": registry.host, "repository": "ext/app"},
        "target": {"registryUri": registry_b.host, "repository": "ext/app"},
        "policies": [{"kind": "external", "url": validator.server.url, "timeoutSeconds": 10}]}}))
    results = {}
    for color, run in (("Green", "r1"), ("Red", "r2")):
        c.push(registry.url, "ext/app", c.oci_image([c.random_layer(4_000, 55)], env=[f"BACKGROUND_COLOR={color}"]),
               tag="v1")
        result = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", run, "--json")
        assert result.code == 0, result.err
        results[color] = result.json()["tags"][0]
    assert results["Green"]["status"] == "promoted"
    assert results["Red"]["status"] == "rejected" and "red is not allowed" in " ".join(results["Red"]["reasons"])
    assert c.list_tags(registry_b.url, "ext/app") == ["v1", "v1-r1"]  # still Green; no tag for r2


def test_a_tick_refuses_a_validator_off_the_allow_list_before_any_connection(registry, registry_b, validator, tmp_path,
                                                                             monkeypatch):
    """A sync stored while the allow-list was wider: the tick checks every host it names up front."""
    sync = parse_sync("ext-hostile", {"properties": {
        "source": {"registryUri": registry.host, "repository": "ext/app"},
        "target": {"registryUri": registry_b.host, "repository": "ext/app"},
        "policies": [{"kind": "external", "id": "local", "url": validator.server.url, "timeoutSeconds": 5},
                     {"kind": "external", "id": "metadata", "url": "http://169.254.169.254/latest/meta-data/",
                      "timeoutSeconds": 5}]}})
    allowed = [registry.host, registry_b.host, urlsplit(validator.server.url).netloc]  # all but the metadata host
    env = JobEnvironment(egress=EgressPolicy(allowed))
    forbid_network(monkeypatch, "sync tick", "opened before the egress check")
    with pytest.raises(EgressDeniedError) as refused:
        run_sync(sync, FileSyncState(tmp_path / "state.json"), env, run_id="r1")
    assert "properties.policies[1].url" in str(refused.value) and "169.254.169.254" in str(refused.value)
    assert validator.requests == []
    assert not (tmp_path / "state.json").exists()  # nothing recorded as if the tick had run


def test_pending_is_awaited_only_by_a_run_that_can_wait_and_a_given_verdict_is_not_asked_again(validator):
    validator.answer = lambda request: (202, {"verdict": "pending"})
    [policy] = from_json([{"kind": "external", "id": "qa", "url": validator.server.url, "timeoutSeconds": 5}])
    digest = "sha256:" + "d" * 64
    [finding] = evaluate([policy], {"digest": digest}, Callback("s1", "20260101000000"))
    assert finding.pending and finding.policy == "qa" and "on the callback" in finding.reason
    assert validator.requests[-1]["callback"] == "/api/syncs/s1/runs/20260101000000/verdict"
    asked = len(validator.requests)
    given = Callback("s1", "20260101000000", {("qa", digest): Answer.given("reject", "no \x1b[31mway")},
                     can_wait=False)
    [finding] = evaluate([policy], {"digest": digest}, given)
    assert not finding.pending and finding.reason.startswith("the validator rejected it: no ")
    assert "\x1b" not in finding.reason and finding.reason.endswith("31mway")
    assert len(validator.requests) == asked  # the verdict given on the callback is not asked for again
    [finding] = evaluate([policy], {"digest": "sha256:" + "e" * 64}, given)  # not given, asked, pending again
    assert not finding.pending and "answered pending" in finding.reason
