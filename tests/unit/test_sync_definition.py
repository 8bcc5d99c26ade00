"""Sync definitions parsed once, with errors naming the JSON path; unique tags and notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from typing import Any

import pytest

from ferry.egress import EgressPolicy
from ferry.errors import UsageError
from ferry.sync.definition import parse_sync
from ferry.sync.notify import Candidate, deliver, image_event, sign

BASE: dict[str, Any] = {"properties": {
    "source": {"registryUri": "docker.io", "repository": "library/node"},
    "target": {"registryUri": "myreg.azurecr.io", "repository": "base/node"},
    "tags": {"include": ["15-alpine"]},
    "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}],
    "notifications": {"webhooks": [{"uri": "https://hooks.example.com/x", "secret": "s3cret"}]},
    "schedule": "0 */15 * * * *"}}


def body(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        node = data["properties"]
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


def test_a_definition_parses_with_defaults():
    sync = parse_sync("node-base", BASE)
    assert (sync.source_registry, sync.target_repository, sync.landing_repository) == \
        ("docker.io", "base/node", "base/node")
    assert sync.unique_tag("15-alpine", "run7") == "15-alpine-run7"
    assert sync.is_unique_tag_of("15-alpine", "15-alpine-run7") and not sync.is_unique_tag_of("15-alpine", "15-alpine")
    assert not sync.is_unique_tag_of("15", "16-run1") and sync.enabled and "s3cret" not in repr(sync)


@pytest.mark.parametrize(("changes", "path"), [
    ({"source.registryUri": "not a host"}, "properties.source.registryUri"),
    ({"source.repository": "UPPER/case"}, "properties.source.repository"),
    ({"target.repository": None}, "properties.target.repository"),
    ({"staging.repository": "../x"}, "properties.staging.repository"),
    ({"tags.include": ["(a+)+"]}, "properties.tags.include[0]"),
    ({"tags.latest": 0}, "properties.tags.latest"),
    ({"policies": [{"kind": "env"}]}, "properties.policies[0]"),
    ({"promotion.uniqueTagFormat": "{tag}"}, "properties.promotion.uniqueTagFormat"),
    ({"promotion.uniqueTagFormat": "{tag}-{runId}/x"}, "properties.promotion.uniqueTagFormat"),
    ({"notifications.webhooks": [{"uri": "ftp://x"}]}, "properties.notifications.webhooks[0].uri"),
    ({"schedule": "*/5 * * * *"}, "properties.schedule"),
    ({"enabled": "yes"}, "properties.enabled"),
])
def test_bad_fields_name_their_path(changes, path):
    with pytest.raises(UsageError) as raised:
        parse_sync("node-base", body(**changes))
    assert str(raised.value).startswith(path), str(raised.value)


def test_events_are_cloudevents_shaped_like_acr_image_pushed_and_signed():
    sync = parse_sync("node-base", BASE)
    event = image_event(sync, Candidate("15-alpine", "sha256:" + "a" * 64, "application/vnd.oci.image.manifest.v1+json",
                                        1234), promoted=True, run_id="run1", unique_tag="15-alpine-run1", reasons=[])
    assert event["specversion"] == "1.0" and event["type"] == "ferry.image.promoted"
    assert event["subject"] == "base/node:15-alpine"
    assert event["data"]["target"] == {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1234,
                                       "digest": "sha256:" + "a" * 64, "repository": "base/node",
                                       "tag": "15-alpine", "uniqueTag": "15-alpine-run1"}
    payload = b'{"x":1}'
    assert sign(payload, "k") == "sha256=" + hmac.new(b"k", payload, hashlib.sha256).hexdigest()


def test_a_webhook_off_the_allow_list_is_reported_not_contacted(monkeypatch):
    def no_socket(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    sync = parse_sync("node-base", BASE)
    event = image_event(sync, Candidate("t", "sha256:" + "b" * 64, "m", 1), promoted=False, run_id="r",
                        unique_tag=None, reasons=["x"])
    [problem] = deliver(event, sync.webhooks, egress=EgressPolicy(["*.azurecr.io"]))
    assert "hooks.example.com" in problem and "FERRY_ALLOWED_HOSTS" in problem


def test_an_event_grid_topic_is_https_and_its_key_is_kept_apart():
    from ferry.sync.stored import split_secrets, with_secrets

    topic = {"topicEndpoint": "https://t.westeurope-1.eventgrid.azure.net/api/events", "key": "TOPICKEY"}
    data = body(notifications={"eventGrid": topic})
    sync = parse_sync("node-base", data)
    assert sync.event_grid is not None and sync.event_grid.key == "TOPICKEY" and "TOPICKEY" not in repr(sync)
    public, secrets = split_secrets(data)
    assert "TOPICKEY" not in json.dumps(public) and secrets["eventGrid"] == "TOPICKEY"
    assert parse_sync("node-base", with_secrets(public, secrets)).event_grid == sync.event_grid
    with pytest.raises(UsageError, match=r"^properties\.notifications\.eventGrid\.topicEndpoint"):
        parse_sync("node-base", body(notifications={"eventGrid": {"topicEndpoint": "http://t/api/events"}}))
