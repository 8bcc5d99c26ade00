"""Pipelines and pipeline runs persisted in Azure Table Storage (``azure-data-tables``).

One table per collection on the app's own storage account (``AzureWebJobsStorage``):
``FerryExportPipelines``, ``FerryImportPipelines`` and ``FerryPipelineRuns``, created on first use.
Each entity has PartitionKey ``ferry`` and RowKey the lower-cased name (ARM names are
case-insensitive), the resource's JSON in ``body``/``body1``/... (a string property holds at most
64 KiB, i.e. 32 Ki UTF-16 characters, so long bodies are split) and the indexed fields a caller
passes (for runs: ``instanceId``, ``requestHash``, ``forceUpdateTag``, ``kind``, ``pipeline``).

Azure errors become :mod:`ferry.errors`: an absent entity is :class:`NotFoundError` naming the
resource, a lost optimistic-concurrency race :class:`ConflictError`, anything else
:class:`StorageError` (transient for 5xx and connection failures).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferry.appsettings import app_storage_connection_string
from ferry.errors import ConflictError, NotFoundError, StorageError, UsageError

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

TABLES = {
    "exportPipelines": "FerryExportPipelines",
    "importPipelines": "FerryImportPipelines",
    "pipelineRuns": "FerryPipelineRuns",
}
PARTITION = "ferry"
CONNECTION_SETTING = "AzureWebJobsStorage"
#: UTF-16 code units per body property (two bytes each): 60 KB, under the 64 KiB property limit.
_CHUNK_UNITS = 30_000
_MAX_PARTS = 15  # 15 x 60 KB stays under the 1 MiB entity limit with room for the other fields
#: Azurite's well-known development account, for ``UseDevelopmentStorage=true``.
def connection_string() -> str:
    """The ``AzureWebJobsStorage`` app setting (``UseDevelopmentStorage=true`` means local Azurite)."""
    try:
        return app_storage_connection_string()
    except UsageError as exc:
        raise StorageError(f"app setting {CONNECTION_SETTING} is not set: Ferry keeps its pipelines there") from exc


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


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{what} not found", status=404) from exc
    except (ResourceExistsError, ResourceModifiedError) as exc:
        raise ConflictError(f"{what} was changed concurrently; retry the request") from exc
    except ClientAuthenticationError as exc:
        raise StorageError(f"{what}: table storage rejected the app's credentials", status=403) from exc
    except HttpResponseError as exc:
        status = exc.status_code
        if status == 412:
            raise ConflictError(f"{what} was changed concurrently; retry the request") from exc
        transient = status is None or status >= 500 or status == 429
        raise StorageError(f"{what}: table storage answered {status}", status=status, transient=transient) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageError(f"{what}: table storage unreachable", transient=True) from exc
    except AzureError as exc:
        raise StorageError(f"{what}: {type(exc).__name__}", transient=True) from exc


class ResourceStore:
    """CRUD and list over the three tables. Cheap to build; tables are created on first use."""

    def __init__(self, service: TableServiceClient) -> None:
        self.service = service
        self._ready: set[str] = set()

    @classmethod
    def from_connection_string(cls, conn: str) -> ResourceStore:
        from azure.data.tables import TableServiceClient

        return cls(TableServiceClient.from_connection_string(conn))

    @classmethod
    def from_settings(cls) -> ResourceStore:
        return cls.from_connection_string(connection_string())

    def _table(self, collection: str) -> TableClient:
        if collection not in TABLES:
            raise UsageError(f"unknown collection {collection!r}")
        table = TABLES[collection]
        if table not in self._ready:
            with _translated(f"table {table}"):
                self.service.create_table_if_not_exists(table)
            self._ready.add(table)
        return self.service.get_table_client(table)

    def get(self, collection: str, name: str) -> Record:
        """The record; NotFoundError naming ``collection/name`` when absent."""
        table = self._table(collection)
        with _translated(f"{collection}/{name}"):
            entity = table.get_entity(PARTITION, name.lower())
        return _record(entity)

    def find(self, collection: str, name: str) -> Record | None:
        try:
            return self.get(collection, name)
        except NotFoundError:
            return None

    def list(self, collection: str) -> list[Record]:
        table = self._table(collection)
        with _translated(collection):
            entities = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}))
        return sorted((_record(e) for e in entities), key=lambda r: r.name.lower())

    def put(self, collection: str, record: Record, *, etag: str | None = None, create: bool = False) -> Record:
        """Write ``record``. ``create``: fail with ConflictError if it exists; ``etag``: only if
        unchanged since read (ConflictError otherwise); neither: create or replace."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._table(collection)
        entity = _entity(record)
        with _translated(f"{collection}/{record.name}"):
            if create:
                meta = table.create_entity(entity)
            elif etag:
                meta = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                           match_condition=MatchConditions.IfNotModified)
            else:
                meta = table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return Record(record.name, record.body, dict(record.fields), meta.get("etag"))

    def delete(self, collection: str, name: str) -> bool:
        """Delete; True if it existed."""
        if self.find(collection, name) is None:
            return False
        table = self._table(collection)
        with _translated(f"{collection}/{name}"):
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
