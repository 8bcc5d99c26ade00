"""Syncs as the Functions app keeps them: the definition without its secrets, the secrets in a
claim, the state in Table storage, and when a sync's own schedule is due.

* :func:`split_secrets` takes the source credentials and webhook secrets out of a definition body
  (they go to the claim ``credentials/syncs/<name>``, bound to the source registry) and
  :func:`with_secrets` puts them back for a tick; what is stored and echoed never holds one.
* :class:`TableSyncState` is :class:`~ferry.sync.state.SyncState` on the ``syncState`` table: one
  record per sync (tags and the last runs, newest first).
* :func:`is_due`: whether an NCRONTAB schedule (seconds first) fired since a sync last started.
* :func:`resolved`: a sync whose target is an export pipeline, with that pipeline's container.

May be imported by the faces.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ferry.errors import ConflictError, NotFoundError
from ferry.sync.definition import SyncDefinition, previous_fire
from ferry.sync.state import StoredSyncState
from ferry.transfer.fields import bad
from ferry.transfer.models import ExportPipeline, parse_export_pipeline
from ferry.transfer.store import Record, ResourceStore

SYNCS = "syncs"
STATE = "syncState"
#: Runs kept per sync in the table, and the JSON characters of its record (the store splits a body
#: into at most 15 properties of 30,000 characters).
MAX_TABLE_RUNS = 20
MAX_STATE_CHARS = 400_000


def secrets_claim(name: str) -> str:
    return f"credentials/syncs/{name.lower()}"


def split_secrets(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the body without credentials and webhook secrets, those secrets)."""
    public = copy.deepcopy(body)
    props = public.get("properties") or {}
    secrets: dict[str, Any] = {"source": (props.get("source") or {}).pop("credentials", None), "webhooks": []}
    notifications = props.get("notifications") or {}
    for hook in notifications.get("webhooks") or []:
        secrets["webhooks"].append(hook.pop("secret", None) if isinstance(hook, dict) else None)
    topic = notifications.get("eventGrid")
    secrets["eventGrid"] = topic.pop("key", None) if isinstance(topic, dict) else None
    return public, secrets


def with_secrets(public: dict[str, Any], secrets: dict[str, Any] | None) -> dict[str, Any]:
    """The body with its secrets back, for parsing and running a tick."""
    body = copy.deepcopy(public)
    if not secrets:
        return body
    props = body.get("properties") or {}
    if secrets.get("source"):
        props.setdefault("source", {})["credentials"] = secrets["source"]
    notifications = props.get("notifications") or {}
    for hook, secret in zip(notifications.get("webhooks") or [], secrets.get("webhooks") or [], strict=False):
        if secret and isinstance(hook, dict):
            hook["secret"] = secret
    if secrets.get("eventGrid") and isinstance(notifications.get("eventGrid"), dict):
        notifications["eventGrid"]["key"] = secrets["eventGrid"]
    return body


class TableSyncState(StoredSyncState):
    """A sync's state in one ``syncState`` record, written only over the version it read (its ETag):
    a tick never brings back the state of a sync deleted under it, nor overwrites another writer's."""

    max_runs = MAX_TABLE_RUNS
    max_chars = MAX_STATE_CHARS

    def __init__(self, store: ResourceStore, name: str) -> None:
        self.store = store
        self.name = name
        found = store.find(STATE, name)
        self._etag = found.etag if found else None
        super().__init__(found.body if found else None)

    def _write(self, body: dict[str, Any]) -> None:
        try:
            record = self.store.put(STATE, Record(self.name, body), etag=self._etag, create=self._etag is None)
        except (ConflictError, NotFoundError) as exc:
            raise ConflictError(f"syncs/{self.name}: its state changed while this tick ran (the sync deleted or "
                                "ticked elsewhere); nothing more is written") from exc
        self._etag = record.etag


def last_started(store: ResourceStore, name: str) -> str | None:
    try:
        runs = store.get(STATE, name).body.get("runs") or []
    except NotFoundError:
        return None
    return str(runs[0]["started"]) if runs else None


def is_due(schedule: str | None, last: datetime | None, now: datetime) -> bool:
    """Whether ``schedule`` (NCRONTAB: seconds first) fired after ``last`` and by ``now``; a sync
    without a schedule runs only by hand, one never run is due at its schedule's first time."""
    if not schedule:
        return False
    previous = previous_fire(schedule, now)
    return last is None or previous > last


def resolved(sync: SyncDefinition, store: ResourceStore) -> SyncDefinition:
    """``sync`` with the target container of the export pipeline it names, as stored now; UsageError
    naming ``properties.target.exportPipeline`` when there is no such pipeline."""
    if sync.export_pipeline is None:
        return sync
    record = store.find(ExportPipeline.collection, sync.export_pipeline)
    if record is None:
        raise bad("properties.target.exportPipeline", f"no export pipeline named {sync.export_pipeline!r}")
    return sync.through(parse_export_pipeline(record.name, record.body).target)
