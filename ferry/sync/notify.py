"""Notifications after a promotion or a rejection: CloudEvents 1.0 to webhooks.

An event (``ferry.image.promoted`` or ``ferry.image.rejected``) has ``subject`` ``repo:tag`` and a
``data.target`` shaped as ACR's ``Microsoft.ContainerRegistry.ImagePushed`` target (``mediaType``,
``size``, ``digest``, ``repository``, ``tag``) plus ``uniqueTag``, ``run`` and ``verdict``, so handlers
written for ACR's events can read it. It is POSTed as a structured CloudEvent
(``application/cloudevents+json``); with a webhook ``secret`` the body is signed,
``X-Ferry-Signature: sha256=<hex HMAC-SHA256 of the body>``. Each delivery is tried 3 times within
a bounded time; a webhook that still fails is reported, never fatal to the sync. An Event Grid
topic (CloudEvents schema) gets the same event through the ``azure-eventgrid`` SDK, with the topic
key or the app's identity.

May be imported by ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ferry.egress import EgressPolicy
from ferry.errors import FerryError
from ferry.redact import redact
from ferry.registry.bodies import read_prefix
from ferry.sync.definition import EventGridTopic, SyncDefinition, Webhook

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Ferry-Signature"
ATTEMPTS = 3
#: How much of a webhook's answer is read (and dropped): its status is all that counts.
ANSWER_LIMIT = 4 * 1024


@dataclass(frozen=True)
class Candidate:
    """The content a verdict is about."""

    tag: str
    digest: str
    media_type: str
    size: int


def image_event(sync: SyncDefinition, candidate: Candidate, *, promoted: bool, run_id: str,
                unique_tag: str | None, reasons: list[str], archive: str | None = None) -> dict[str, Any]:
    """The CloudEvent of one verdict; for an archive target, ``data.archive`` is the archive's URL
    (redacted) and ``data.registry`` is null."""
    repository = sync.target_repository
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"ferry/syncs/{sync.name}",
        "type": "ferry.image.promoted" if promoted else "ferry.image.rejected",
        "subject": f"{repository}:{candidate.tag}",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "datacontenttype": "application/json",
        "data": {
            "action": "promoted" if promoted else "rejected",
            "target": {"mediaType": candidate.media_type, "size": candidate.size, "digest": candidate.digest,
                       "repository": repository, "tag": candidate.tag, "uniqueTag": unique_tag},
            "source": {"registry": sync.source_registry, "repository": sync.source_repository},
            "registry": sync.target_registry or None,
            **({"archive": redact(archive)} if archive else {}),
            "run": run_id,
            "verdict": {"promoted": promoted, "reasons": reasons},
        },
    }


def notify(sync: SyncDefinition, event: dict[str, Any], egress: EgressPolicy | None) -> list[str]:
    """``event`` to the sync's webhooks and Event Grid topic; the failures (never fatal to the tick)."""
    return [*deliver(event, sync.webhooks, egress=egress), *publish(event, sync.event_grid, egress=egress)]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(event: dict[str, Any], webhooks: tuple[Webhook, ...], *, egress: EgressPolicy | None = None,
            timeout: float = 10.0) -> list[str]:
    """POST ``event`` to each webhook; the failures, one message each (empty: all delivered)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    failures = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for hook in webhooks:
            headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
            if hook.secret:
                headers[SIGNATURE_HEADER] = sign(body, hook.secret)
            try:
                problem = _post(client, hook.uri, body, headers, egress)
            except FerryError as exc:  # e.g. a webhook host off the allow-list: refused before connecting
                problem = str(exc)
            if problem:
                failures.append(redact(f"webhook {hook.uri}: {problem}"))
                log.warning("%s", failures[-1])
    return failures


def _post(client: httpx.Client, uri: str, body: bytes, headers: dict[str, str],
          egress: EgressPolicy | None) -> str | None:
    """One webhook's delivery with its retries; the answer's body is never kept (at most 4 KiB read)."""
    if egress is not None:
        egress.check_url(uri, "webhook")
    problem = "not tried"
    for attempt in range(ATTEMPTS):
        try:
            with client.stream("POST", uri, content=body, headers=headers) as response:
                read_prefix(response, ANSWER_LIMIT)
            if response.status_code < 300:
                return None
            problem = f"answered {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                return problem
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        time.sleep(min(0.5 * 2 ** attempt, 4.0))
    return f"{problem} after {ATTEMPTS} attempts"


def publish(event: dict[str, Any], topic: EventGridTopic | None, *, egress: EgressPolicy | None = None) -> list[str]:
    """Publish ``event`` to the Event Grid ``topic`` (none: nothing to do); the failures."""
    if topic is None:
        return []
    from azure.core.credentials import AzureKeyCredential
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient

    from ferry.azure.budget import core_options
    from ferry.azure.errors import translate_azure_errors

    try:
        if egress is not None:
            egress.check_url(topic.endpoint, "Event Grid topic", https=True)
        if topic.key:
            credential: Any = AzureKeyCredential(topic.key)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        cloud_event = CloudEvent(source=event["source"], type=event["type"], data=event["data"],
                                 subject=event["subject"], id=event["id"])
        with translate_azure_errors(f"Event Grid topic {topic.endpoint}"), \
                EventGridPublisherClient(topic.endpoint, credential, **core_options()) as client:
            client.send([cloud_event])
    except FerryError as exc:
        log.warning("event %s not published: %s", event["type"], redact(str(exc)))
        return [redact(f"Event Grid topic {topic.endpoint}: {exc}")]
    return []
