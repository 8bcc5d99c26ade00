"""The seed's story of consuming public content, on local registries: an upstream node:15-alpine
whose config changes BACKGROUND_COLOR from Orange to Green to Red across three ticks. Orange and
Green are promoted (stable tag plus a unique rollback tag, the gated digest itself); Red is rejected
and the stable tag stays on Green; a fourth tick with nothing changed makes only HEAD requests and
moves no byte; rollback to Orange's unique tag works. A webhook receives signed CloudEvents."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest

from tests.harness import content as c
from tests.harness._http import LoopbackServer, QuietHandler
from tests.harness.faultproxy import FaultProxy
from tests.helpers import run_ferry

SECRET = "webhook-shared-secret"


class Receiver:
    def __init__(self) -> None:
        self.events: list[tuple[dict, str]] = []
        self.lock = threading.Lock()
        self.server = LoopbackServer(_Handler, self)


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        body = self.read_body()
        owner: Receiver = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.events.append((json.loads(body), self.headers.get("X-Ferry-Signature", "") + "|" +
                                 hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))
        self.reply(200, b"")


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.server.stop()


def node(color: str) -> c.Manifest:
    return c.oci_image([c.random_layer(30_000, 500), c.random_layer(5_000, hash(color) % 1000)],
                       env=[f"BACKGROUND_COLOR={color}", "NODE_VERSION=15.14.0"], seed=len(color))


def test_orange_green_red_unchanged_and_rollback(registry, registry_b, tmp_path, receiver, capsys):
    upstream = FaultProxy(registry.host)  # counts what the sync asks upstream
    try:
        sync_file = tmp_path / "node.json"
        sync_file.write_text(json.dumps({"name": "node-base", "properties": {
            "source": {"registryUri": upstream.host, "repository": "library/node"},
            "tags": {"include": ["15-alpine"]},
            "target": {"registryUri": registry_b.host, "repository": "base/node"},
            "staging": {"repository": "staging/node"},
            "policies": [{"id": "not-red", "kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}],
            "notifications": {"webhooks": [{"uri": receiver.server.url, "secret": SECRET}]}}}))
        digests = {}

        seconds = {}

        def tick(color: str, run_id: str) -> dict:
            if color:
                digests[color] = c.push(registry.url, "library/node", node(color), tag="15-alpine")
            started = time.monotonic()
            result = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", run_id, "--json")
            seconds[run_id] = round(time.monotonic() - started, 2)
            assert result.code == 0, result.out + result.err
            [tag] = result.json()["tags"]
            return tag

        assert tick("Orange", "run1")["status"] == "promoted"
        assert stable(registry_b) == digests["Orange"] == unique(registry_b, "run1")
        assert tick("Green", "run2")["status"] == "promoted"
        assert stable(registry_b) == digests["Green"] == unique(registry_b, "run2")
        red = tick("Red", "run3")
        assert red["status"] == "rejected" and "BACKGROUND_COLOR" in " ".join(red["reasons"])
        assert stable(registry_b) == digests["Green"]  # the last good image is still served
        assert "15-alpine-run3" not in c.list_tags(registry_b.url, "base/node")

        upstream.reset_counters()
        quiet = tick("", "run4")
        assert quiet["status"] == "unchanged" and quiet["bytes_moved"] == 0
        methods = {key.split()[0] for key in upstream.requests}
        assert methods == {"GET", "HEAD"} and upstream.count("/manifests/", "GET") == 0
        assert upstream.count("/manifests/", "HEAD") == 1 and upstream.count("/tags/list") == 1

        rolled = run_ferry(capsys, "sync", str(sync_file), "--rollback", "15-alpine", "--to", "15-alpine-run1")
        assert rolled.code == 0, rolled.err
        assert stable(registry_b) == digests["Orange"]
        print(f"\nseed story, seconds per tick: {seconds}")
    finally:
        upstream.stop()

    kinds = [(event["type"], event["data"]["target"]["digest"]) for event, _ in receiver.events]
    assert kinds == [("ferry.image.promoted", digests["Orange"]), ("ferry.image.promoted", digests["Green"]),
                     ("ferry.image.rejected", digests["Red"])]
    assert all(sig.split("|")[0] == "sha256=" + sig.split("|")[1] for _, sig in receiver.events)
    promoted = receiver.events[0][0]
    assert promoted["subject"] == "base/node:15-alpine" and promoted["specversion"] == "1.0"
    assert promoted["data"]["target"]["uniqueTag"] == "15-alpine-run1"
    assert set(promoted["data"]["target"]) >= {"mediaType", "size", "digest", "repository", "tag"}


def digest_of(registry, tag: str) -> str:
    return "sha256:" + hashlib.sha256(c.get_manifest(registry.url, "base/node", tag)[1]).hexdigest()


def stable(registry) -> str:
    return digest_of(registry, "15-alpine")


def unique(registry, run_id: str) -> str:
    return digest_of(registry, f"15-alpine-{run_id}")


def test_a_dry_run_reports_and_moves_nothing(registry, registry_b, tmp_path, capsys):
    c.push(registry.url, "library/dry", node("Orange"), tag="15-alpine")
    sync_file = tmp_path / "dry.json"
    sync_file.write_text(json.dumps({"name": "dry-run", "properties": {
        "source": {"registryUri": registry.host, "repository": "library/dry"},
        "target": {"registryUri": registry_b.host, "repository": "base/dry"}}}))
    result = run_ferry(capsys, "sync", str(sync_file), "--once", "--dry-run", "--json")
    assert result.code == 0, result.err
    [tag] = result.json()["tags"]
    assert tag["status"] == "would-sync" and tag["promoted"] == []
    assert c.list_tags(registry_b.url, "base/dry") == []
    again = run_ferry(capsys, "sync", str(sync_file), "--once", "--dry-run", "--json")
    assert again.json()["tags"][0]["status"] == "would-sync"  # a dry run remembers no verdict
