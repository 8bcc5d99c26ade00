"""Sync notifications published to an Event Grid topic with the real EventGridPublisherClient,
against a local HTTPS stand-in of the topic's CloudEvents endpoint (tests/harness/eventgrid.py)."""

from __future__ import annotations

import pytest

from ferry.egress import EgressPolicy
from ferry.sync.definition import EventGridTopic, parse_sync
from ferry.sync.notify import Candidate, image_event, publish
from tests.harness.eventgrid import EventGridStandIn

KEY = "TOPICKEYdonotshow"


@pytest.fixture
def topic(tmp_path, monkeypatch):
    stand_in = EventGridStandIn(tmp_path / "eg", KEY)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stand_in.ca_bundle))  # the stand-in's self-signed certificate
    yield stand_in
    stand_in.stop()


def event() -> dict:
    sync = parse_sync("node-base", {"properties": {
        "source": {"registryUri": "docker.io", "repository": "library/node"},
        "target": {"registryUri": "myreg.azurecr.io", "repository": "base/node"}}})
    return image_event(sync, Candidate("15-alpine", "sha256:" + "c" * 64, "application/vnd.oci.image.manifest.v1+json",
                                       5120), promoted=True, run_id="run9", unique_tag="15-alpine-run9", reasons=[])


def test_an_event_reaches_the_topic_as_a_cloudevent(topic):
    sent = event()
    assert publish(sent, EventGridTopic(topic.endpoint, KEY)) == []
    [received] = topic.events
    assert (received["type"], received["subject"], received["id"]) == ("ferry.image.promoted",
                                                                      "base/node:15-alpine", sent["id"])
    assert received["specversion"] == "1.0" and received["data"]["target"]["uniqueTag"] == "15-alpine-run9"


def test_a_wrong_key_is_reported_not_raised_and_never_shown(topic):
    [problem] = publish(event(), EventGridTopic(topic.endpoint, "WRONGKEYdonotshow"))
    assert topic.rejected == 1 and "401" in problem
    assert "WRONGKEY" not in problem and KEY not in problem


def test_a_topic_off_the_allow_list_is_not_contacted(topic):
    [problem] = publish(event(), EventGridTopic(topic.endpoint, KEY), egress=EgressPolicy(["*.eventgrid.azure.net"]))
    assert "FERRY_ALLOWED_HOSTS" in problem and topic.events == [] and topic.rejected == 0
