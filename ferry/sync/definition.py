"""A sync definition: which upstream tags to follow, how to judge them, where to promote them.

The ARM-like shape the API and ``ferry sync SYNC.json`` read, parsed once (errors name the JSON
path, as the pipelines' do)::

    {"properties": {
       "source": {"registryUri": "docker.io", "repository": "library/node", "credentials": {...}?},
       "tags": {"include": ["15-alpine"], "semver": ">=15 <16", "exclude": [".*-rc.*"], "latest": 3}?,
       "target": {"registryUri": "myreg.azurecr.io", "repository": "base/node"}
               | {"archive": {"uri": CONTAINER_URL, "storageAccessMode": ..., "keyVaultUri"?}}
               | {"exportPipeline": NAME | ".../registries/R/exportPipelines/NAME"},
       "staging": {"repository": "staging/node"}?,
       "policies": [{"name": "no-red", "kind": "env", ...}]?,
       "promotion": {"uniqueTagFormat": "{tag}-{runId}"}?,
       "notifications": {"webhooks": [{"uri": "https://...", "secret": "..."}],
                         "eventGrid": {"topicEndpoint": "https://T.REGION.eventgrid.azure.net/api/events",
                                       "key": "..."?}}?,
       "schedule": "0 */15 * * * *"?, "enabled": true?}}

A target ``exportPipeline`` is a scheduled incremental transfer into that pipeline's target
container, read when each tick runs (:meth:`SyncDefinition.through` gives the resolved sync), so
a pipeline moved to another container is followed.

Changed content lands in ``staging`` (default: the target repository itself, untagged) and is gated
there; promotion then writes ``uniqueTagFormat`` first and the stable tag second, both to the digest
that was gated.

May be imported by ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ferry.egress import EgressPolicy
from ferry.reference import endpoint_for, is_valid_repository
from ferry.sync.filters import TagFilter
from ferry.sync.policies import ExternalPolicy, Policy
from ferry.sync.policies import from_json as policies_from_json
from ferry.transfer.fields import (
    Credentials,
    bad,
    json_object,
    parse_credentials,
    properties_of,
    registry_host,
    string,
    validate_name,
)
from ferry.transfer.models import StorageLocation, parse_pipeline_resource_id

DEFAULT_UNIQUE_TAG = "{tag}-{runId}"
_NCRONTAB = re.compile(r"\S+( \S+){5}")


@dataclass(frozen=True)
class Webhook:
    """Where notifications are POSTed; ``secret`` signs them (``X-Ferry-Signature: sha256=<hmac>``)."""

    uri: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EventGridTopic:
    """An Event Grid topic (CloudEvents schema) events are published to; ``key`` is the topic's
    access key, else the app's identity (EventGrid Data Sender) is used."""

    endpoint: str
    key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SyncDefinition:
    name: str
    source_registry: str
    source_repository: str
    target_registry: str
    target_repository: str
    tags: TagFilter
    staging_repository: str | None = None
    policies: tuple[Policy, ...] = ()
    unique_tag_format: str = DEFAULT_UNIQUE_TAG
    webhooks: tuple[Webhook, ...] = ()
    event_grid: EventGridTopic | None = None
    #: A scheduled incremental transfer: changed tags are exported to an archive in this container
    #: (``<sync>-<runId>.tar``), leaving out the blobs the previous tick's archive carried.
    archive: StorageLocation | None = None
    #: The export pipeline whose target container is ``archive`` (resolved per tick by the face).
    export_pipeline: str | None = None
    schedule: str | None = None
    enabled: bool = True
    source_credentials: Credentials | None = field(default=None, repr=False)

    def unique_tag(self, tag: str, run_id: str) -> str:
        """The rollback tag of one promotion: ``uniqueTagFormat`` with ``{tag}`` and ``{runId}``."""
        return self.unique_tag_format.replace("{tag}", tag).replace("{runId}", run_id)[:128]

    def is_unique_tag_of(self, tag: str, candidate: str) -> bool:
        """Whether ``candidate`` is a promotion tag of ``tag`` under ``uniqueTagFormat``."""
        head, _, tail = self.unique_tag_format.replace("{tag}", tag).partition("{runId}")
        return (candidate != tag and candidate.startswith(head) and candidate.endswith(tail)
                and len(candidate) > len(head) + len(tail))

    @property
    def exports(self) -> bool:
        """Whether the target is an archive (inline, or an export pipeline's container)."""
        return self.archive is not None or self.export_pipeline is not None

    def through(self, container: StorageLocation) -> SyncDefinition:
        """This sync with its export pipeline resolved to that pipeline's target ``container``."""
        return replace(self, archive=container)

    @property
    def landing_repository(self) -> str:
        """Where changed content is copied and gated before promotion."""
        return self.staging_repository or self.target_repository

    def check_egress(self, policy: EgressPolicy) -> None:
        """Refuse (EgressDeniedError naming the field) any host this sync would contact that ``policy``
        does not allow: the source, the target (registry, or archive container and Key Vault), webhooks,
        the Event Grid topic and external validators."""
        policy.check_host(endpoint_for(self.source_registry), "properties.source.registryUri")
        if self.archive is not None:
            self.archive.check_egress(policy, "properties.target.exportPipeline" if self.export_pipeline
                                      else "properties.target.archive")
        elif self.export_pipeline is None:
            policy.check_host(endpoint_for(self.target_registry), "properties.target.registryUri")
        for i, hook in enumerate(self.webhooks):
            policy.check_url(hook.uri, f"properties.notifications.webhooks[{i}].uri")
        if self.event_grid is not None:
            policy.check_url(self.event_grid.endpoint, "properties.notifications.eventGrid.topicEndpoint", https=True)
        for i, rule in enumerate(self.policies):
            if isinstance(rule, ExternalPolicy):
                policy.check_url(rule.url, f"properties.policies[{i}].url")


def previous_fire(schedule: str, now: datetime) -> datetime:
    """When NCRONTAB ``schedule`` (seconds first) last fired by ``now``; ValueError when cron cannot
    read it or it never fires (the 31st of February)."""
    from croniter import croniter

    seconds, *rest = schedule.split()
    fired: datetime = croniter(" ".join([*rest, seconds]), now).get_prev(datetime)
    return fired


def _repository(value: Any, path: str) -> str:
    text = string(value, path, max_length=255)
    assert text is not None
    if not is_valid_repository(text):
        raise bad(path, f"{text!r} is not a repository path")
    return text


def _unique_format(value: Any) -> str:
    path = "properties.promotion.uniqueTagFormat"
    text = string(value, path, required=False, max_length=100) or DEFAULT_UNIQUE_TAG
    if "{tag}" not in text or "{runId}" not in text:
        raise bad(path, "must contain {tag} and {runId} so every promotion gets its own rollback tag")
    if not re.fullmatch(r"[A-Za-z0-9_.{}-]+", text):
        raise bad(path, "may hold letters, digits, '_', '.', '-' and the {tag} and {runId} placeholders")
    return text


def _webhooks(value: Any) -> tuple[Webhook, ...]:
    raw = json_object(value, "properties.notifications", required=False).get("webhooks") or []
    if not isinstance(raw, list):
        raise bad("properties.notifications.webhooks", "must be a list")
    hooks = []
    for i, item in enumerate(raw):
        path = f"properties.notifications.webhooks[{i}]"
        hook = json_object(item, path)
        uri = string(hook.get("uri"), f"{path}.uri")
        assert uri is not None
        if not uri.startswith(("https://", "http://")):
            raise bad(f"{path}.uri", "must be an http(s) URL")
        hooks.append(Webhook(uri, string(hook.get("secret"), f"{path}.secret", required=False)))
    return tuple(hooks)


def _event_grid(value: Any) -> EventGridTopic | None:
    path = "properties.notifications.eventGrid"
    raw = json_object(value, "properties.notifications", required=False).get("eventGrid")
    if raw is None:
        return None
    topic = json_object(raw, path)
    endpoint = string(topic.get("topicEndpoint"), f"{path}.topicEndpoint")
    assert endpoint is not None
    if not endpoint.startswith("https://"):
        raise bad(f"{path}.topicEndpoint", "must be the topic's https endpoint (.../api/events)")
    return EventGridTopic(endpoint, string(topic.get("key"), f"{path}.key", required=False))


def _export_pipeline(target: dict[str, Any]) -> str | None:
    path = "properties.target.exportPipeline"
    if "exportPipeline" not in target:
        return None
    ref = parse_pipeline_resource_id(target["exportPipeline"], path)
    if ref.kind == "import":
        raise bad(path, "must name an export pipeline (.../exportPipelines/NAME, or a bare name)")
    return ref.name


def parse_sync(name: str, body: Any) -> SyncDefinition:
    """A SyncDefinition from its JSON; UsageError naming the JSON path of a bad field."""
    validate_name(name)
    props = properties_of(body)
    source = json_object(props.get("source"), "properties.source")
    target = json_object(props.get("target"), "properties.target")
    staging = json_object(props.get("staging"), "properties.staging", required=False)
    schedule = string(props.get("schedule"), "properties.schedule", required=False, max_length=100)
    if schedule is not None and not _NCRONTAB.fullmatch(schedule):
        raise bad("properties.schedule", "must be NCRONTAB with six fields (seconds first), e.g. '0 */15 * * * *'")
    if schedule is not None:
        try:
            previous_fire(schedule, datetime.now(UTC))
        except ValueError as exc:
            raise bad("properties.schedule", f"{schedule!r} is not a schedule that fires: {exc}") from None
    enabled = props.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("properties.enabled", "must be true or false")
    source_repository = _repository(source.get("repository"), "properties.source.repository")
    archive = StorageLocation.parse(target["archive"], "properties.target.archive") if "archive" in target else None
    pipeline = _export_pipeline(target)
    if archive or pipeline:
        extra = sorted(set(target) - {"archive" if archive else "exportPipeline"})
        if extra:
            raise bad("properties.target", f"{'archive' if archive else 'exportPipeline'} is a target of its own; "
                                           f"drop {', '.join(extra)}")
    return SyncDefinition(
        name=name,
        source_registry=registry_host(source.get("registryUri"), "properties.source.registryUri"),
        source_repository=source_repository,
        target_registry="" if archive or pipeline else registry_host(target.get("registryUri"),
                                                                     "properties.target.registryUri"),
        target_repository=source_repository if archive or pipeline else _repository(
            target.get("repository"), "properties.target.repository"),
        archive=archive,
        export_pipeline=pipeline,
        tags=TagFilter.from_json(props.get("tags") or {}, "properties.tags"),
        staging_repository=(_repository(staging["repository"], "properties.staging.repository")
                            if staging.get("repository") is not None else None),
        policies=policies_from_json(props.get("policies") or [], "properties.policies"),
        unique_tag_format=_unique_format(json_object(props.get("promotion"), "properties.promotion",
                                                     required=False).get("uniqueTagFormat")),
        webhooks=_webhooks(props.get("notifications")),
        event_grid=_event_grid(props.get("notifications")),
        schedule=schedule,
        enabled=enabled,
        source_credentials=parse_credentials(source.get("credentials"), "properties.source.credentials"),
    )
