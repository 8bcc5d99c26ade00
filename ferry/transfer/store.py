"""Pipelines and pipeline runs persisted in Azure Table Storage (``azure-data-tables``).

One table per collection on the app's own storage account (``AzureWebJobsStorage``):
``FerryExportPipelines``, ``FerryImportPipelines`` and ``FerryPipelineRuns``, created on first use.
Each entity has PartitionKey ``ferry`` and RowKey the lower-cased name (ARM names are
case-insensitive), the resource's JSON in ``body``/``body1``/... (a string property holds at most
64 KiB, i.e. 32 Ki UTF-16 characters, so long bodies are split) and the indexed fields a caller
passes (for runs: ``instanceId``, ``requestHash``, ``forceUpdateTag``, ``kind``, ``pipeline``).

Azure errors are translated by :mod:`ferry.azure.errors` (``TABLES``): an absent entity is
:class:`~ferry.errors.NotFoundError` naming the resource, a lost optimistic-concurrency race
:class:`~ferry.errors.ConflictError`, anything else :class:`~ferry.errors.StorageError`.

May be imported by the faces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferry.azure.connections import pooled, table_service
from ferry.azure.errors import TABLES, translate_azure_errors
from ferry.errors import NotFoundError, StorageError, UsageError
from ferry.settings import APP_STORAGE, Settings, StorageConnection
from ferry.transfer.fields import is_valid_name

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

TABLE_NAMES = {
    "exportPipelines": "FerryExportPipelines",
    "importPipelines": "FerryImportPipelines",
    "pipelineRuns": "FerryPipelineRuns",
    "syncs": "FerrySyncs",
    "syncState": "FerrySyncState",
}
PARTITION = "ferry"
#: UTF-16 code units per body property (two bytes each): 60 KB, under the 64 KiB property limit.
_CHUNK_UNITS = 30_000
_MAX_PARTS = 15  # 15 x 60 KB stays under the 1 MiB entity limit with room for the other fields
def app_storage(settings: Settings) -> StorageConnection:
    """The ``AzureWebJobsStorage`` app setting (``UseDevelopmentStorage=true`` means local Azurite)."""
    try:
        return settings.app_storage
    except UsageError as exc:
        raise StorageError(f"app setting {APP_STORAGE} is not set: Ferry keeps its pipelines there") from exc


@dataclass
class Record:
    """One stored resource: its name as given, its JSON body, indexed fields and the entity ETag."""

    name: str
    body: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    units = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > _CHUNK_UNITS:
            parts.append("".join(current))
            current, units = [], 0
        current.append(ch)
        units += width
    parts.append("".join(current))
    return parts


class ResourceStore:
    """CRUD and list over the three tables. Cheap to build; tables are created on first use."""

    def __init__(self, service: TableServiceClient) -> None:
        self.service = service
        self._ready: set[str] = set()

    @classmethod
    def from_connection(cls, connection: StorageConnection) -> ResourceStore:
        return cls(table_service(connection))

    @classmethod
    def from_connection_string(cls, conn: str) -> ResourceStore:
        return cls.from_connection(StorageConnection(APP_STORAGE, connection_string=conn))

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceStore:
        """The process's store of the app's storage account (shared: its tables are created once)."""
        return pooled(app_storage(settings), cls.from_connection)

    def _table(self, collection: str) -> TableClient:
        if collection not in TABLE_NAMES:
            raise UsageError(f"unknown collection {collection!r}")
        table = TABLE_NAMES[collection]
        if table not in self._ready:
            with translate_azure_errors(f"table {table}", TABLES):
                self.service.create_table_if_not_exists(table)
            self._ready.add(table)
        return self.service.get_table_client(table)

    def get(self, collection: str, name: str) -> Record:
        """The record; NotFoundError naming ``collection/name`` when absent (or not a valid name)."""
        if not is_valid_name(name):
            raise NotFoundError(f"{collection}/{name[:60]!r} not found (names are 5 to 50 letters, digits and dashes)",
                                status=404)
        table = self._table(collection)
        with translate_azure_errors(f"{collection}/{name}", TABLES):
            entity = table.get_entity(PARTITION, name.lower())
        return _record(entity)

    def find(self, collection: str, name: str) -> Record | None:
        try:
            return self.get(collection, name)
        except NotFoundError:
            return None

    def list(self, collection: str) -> list[Record]:
        table = self._table(collection)
        with translate_azure_errors(collection, TABLES):
            entities = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}))
        return sorted((_record(e) for e in entities), key=lambda r: r.name.lower())

    def put(self, collection: str, record: Record, *, etag: str | None = None, create: bool = False) -> Record:
        """Write ``record``. ``create``: fail with ConflictError if it exists; ``etag``: only if
        unchanged since read (ConflictError otherwise); neither: create or replace."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._table(collection)
        entity = _entity(record)
        with translate_azure_errors(f"{collection}/{record.name}", TABLES):
            if create:
                meta = table.create_entity(entity)
            elif etag:
                meta = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                           match_condition=MatchConditions.IfNotModified)
            else:
                meta = table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return Record(record.name, record.body, dict(record.fields), meta.get("etag"))

    def delete(self, collection: str, name: str) -> bool:
        """Delete; True if it existed (a name that cannot exist never did)."""
        if not is_valid_name(name) or self.find(collection, name) is None:
            return False
        table = self._table(collection)
        with translate_azure_errors(f"{collection}/{name}", TABLES):
            table.delete_entity(PARTITION, name.lower())
        return True


def _entity(record: Record) -> dict[str, Any]:
    text = json.dumps(record.body, separators=(",", ":"))
    parts = _split(text)
    if len(parts) > _MAX_PARTS:
        raise UsageError(f"{record.name}: the resource is too large to store ({len(text)} characters)")
    entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": record.name.lower(), "name": record.name,
                              "bodyParts": len(parts)}
    for i, part in enumerate(parts):
        entity["body" if i == 0 else f"body{i}"] = part
    for key, value in record.fields.items():
        if value is not None:
            entity[key] = value
    return entity


def _record(entity: Any) -> Record:
    count = int(entity.get("bodyParts") or 1)
    text = "".join(entity.get("body" if i == 0 else f"body{i}") or "" for i in range(count))
    reserved = {"PartitionKey", "RowKey", "name", "bodyParts"} | {"body"} | {f"body{i}" for i in range(1, count)}
    fields = {k: v for k, v in entity.items() if k not in reserved}
    etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return Record(entity.get("name") or entity["RowKey"], json.loads(text), fields, etag)
