"""Every app setting and environment variable Ferry reads, in one place, from one Mapping.

The faces build a :class:`Settings` once per call (``Settings.from_env()`` reads ``os.environ``;
tests pass a dict) and hand it down; nothing else in Ferry reads ``os.environ``. The names below
are the whole contract with the Functions app's configuration (``local.settings.json.example``,
the README's settings table and the deployment template list the same names).

May be imported by anything; imports only :mod:`ferry.errors`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import UsageError

# -- the app's own storage (task hub, pipelines, runs, claims) -----------------------------------
APP_STORAGE = "AzureWebJobsStorage"
CLAIMS_CONNECTION = "FERRY_CLAIMS_CONNECTION"
#: Local claim files instead of a storage account (``ferry run``, tests). CLI only.
CLAIMS_DIR = "FERRY_CLAIMS_DIR"
#: Claims older than this many hours are swept (except a running run's and pipelines' credentials).
CLAIMS_MAX_AGE_HOURS = "FERRY_CLAIMS_MAX_AGE_HOURS"
#: NCRONTAB schedule of the claims sweep (default: hourly).
CLAIMS_SWEEP_SCHEDULE = "FERRY_CLAIMS_SWEEP_SCHEDULE"
# -- registries ----------------------------------------------------------------------------------
REGISTRY = "FERRY_REGISTRY"
#: The egress allow-list of the app (see :mod:`ferry.egress`).
ALLOWED_HOSTS = "FERRY_ALLOWED_HOSTS"
INSECURE_REGISTRIES = "FERRY_INSECURE_REGISTRIES"
MAX_ARTIFACTS = "FERRY_MAX_ARTIFACTS"
#: One retry budget per registry operation: attempts, and seconds from its first attempt.
RETRY_ATTEMPTS = "FERRY_RETRY_ATTEMPTS"
RETRY_SECONDS = "FERRY_RETRY_SECONDS"
# -- transfer storage ----------------------------------------------------------------------------
STORAGE_CONNECTION_STRINGS = "FERRY_STORAGE_CONNECTION_STRINGS"
AZURE_STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
KEYVAULT_CA_BUNDLE = "FERRY_KEYVAULT_CA_BUNDLE"
# -- the import blob trigger ---------------------------------------------------------------------
IMPORT_BLOB_PATH = "FERRY_IMPORT_BLOB_PATH"
IMPORT_STORAGE = "FERRY_IMPORT_STORAGE"
IMPORT_TRIGGER_SOURCE = "FERRY_IMPORT_TRIGGER_SOURCE"
# -- scheduled syncs ------------------------------------------------------------------------------
#: NCRONTAB of the timer that starts due syncs (default: every 5 minutes).
SYNC_TICK = "FERRY_SYNC_TICK"
# -- Azure Resource Manager and the ACR importImage handoff --------------------------------------
ARM_ENDPOINT = "FERRY_ARM_ENDPOINT"
ARM_CA_BUNDLE = "FERRY_ARM_CA_BUNDLE"
TARGET_ACR_RESOURCE_ID = "FERRY_TARGET_ACR_RESOURCE_ID"
ACR_IMPORT_HANDOFF = "FERRY_ACR_IMPORT_HANDOFF"
# -- the CLI's environment -----------------------------------------------------------------------
CACHE_DIR = "FERRY_CACHE_DIR"
XDG_CACHE_HOME = "XDG_CACHE_HOME"
DOCKER_CONFIG = "DOCKER_CONFIG"

#: Names only the ``ferry`` command reads; the Functions app never needs them.
CLI_ONLY = frozenset({CLAIMS_DIR, CACHE_DIR, XDG_CACHE_HOME, DOCKER_CONFIG, AZURE_STORAGE_CONNECTION_STRING})

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_CLAIMS_MAX_AGE_HOURS = 48
DEFAULT_MAX_ARTIFACTS = 10_000
#: What the Functions host means by ``UseDevelopmentStorage=true``: Azurite's well-known account.
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def expand_connection_string(value: str) -> str:
    """``value`` with ``UseDevelopmentStorage=true`` spelled out as Azurite's account."""
    return DEVELOPMENT_STORAGE if value.strip() == "UseDevelopmentStorage=true" else value


def _host(value: str) -> str:
    return value.strip().removeprefix("https://").removeprefix("http://").rstrip("/")


#: The identity form of a storage connection setting X: X__accountName, X__blobServiceUri, ...
IDENTITY_SUFFIXES = ("accountName", "blobServiceUri", "serviceUri", "queueServiceUri", "tableServiceUri",
                     "credential", "clientId")


@dataclass(frozen=True)
class StorageConnection:
    """The app's storage, from setting ``setting``: a connection string, or service URIs reached
    with a managed identity (``client_id`` names a user-assigned one; None: the default identity).
    Hashable, so clients can be pooled per connection. ``repr`` never shows the string's key."""

    setting: str
    connection_string: str | None = field(default=None, repr=False)
    blob_uri: str | None = None
    table_uri: str | None = None
    queue_uri: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class Settings:
    """A read-only view of app settings; every accessor names the setting in its errors."""

    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``env`` (default: this process's environment, copied now)."""
        return cls(dict(os.environ if env is None else env))

    def get(self, name: str) -> str:
        """The setting's value stripped, or ``""`` when unset."""
        return (self.env.get(name) or "").strip()

    # -- storage ---------------------------------------------------------------------------------
    def storage_connection(self, name: str, *, fallback: str | None = None) -> StorageConnection:
        """Setting ``name`` (else ``fallback``) as a connection string, or in the identity form the
        Functions host uses: ``name__accountName`` or ``name__blobServiceUri`` (``__serviceUri``),
        ``__tableServiceUri``, ``__queueServiceUri``, with ``__credential=managedidentity`` and
        ``__clientId`` for a user-assigned identity. UsageError naming both forms when unset."""
        for candidate in (name, fallback):
            if not candidate:
                continue
            if self.get(candidate):
                return StorageConnection(candidate, connection_string=expand_connection_string(self.get(candidate)))
            found = self._identity_connection(candidate)
            if found is not None:
                return found
        either = f" (nor {fallback})" if fallback else ""
        raise UsageError(f"app setting {name} is not set{either}: give a connection string, or {name}__accountName "
                         f"(or {name}__blobServiceUri and {name}__tableServiceUri) for a managed identity")

    def _identity_connection(self, name: str) -> StorageConnection | None:
        account = self.get(f"{name}__accountName")

        def uri(service: str, *keys: str) -> str | None:
            for key in keys:
                if self.get(f"{name}__{key}"):
                    return self.get(f"{name}__{key}").rstrip("/")
            return f"https://{account}.{service}.core.windows.net" if account else None

        blob = uri("blob", "blobServiceUri", "serviceUri")
        table = uri("table", "tableServiceUri")
        if blob is None and table is None:
            return None
        user_assigned = self.get(f"{name}__credential").lower() == "managedidentity"
        return StorageConnection(name, blob_uri=blob, table_uri=table, queue_uri=uri("queue", "queueServiceUri"),
                                 client_id=(self.get(f"{name}__clientId") or None) if user_assigned else None)

    def connection_string(self, name: str, *, fallback: str | None = None) -> str:
        """The connection string in setting ``name`` (else ``fallback``'s), expanded; UsageError if unset."""
        value = self.get(name) or (self.get(fallback) if fallback else "")
        if not value:
            raise UsageError(f"app setting {name} is not set" + (f" (nor {fallback})" if fallback else ""))
        return expand_connection_string(value)

    @property
    def app_storage(self) -> StorageConnection:
        """``AzureWebJobsStorage``: the task hub's account, which also keeps pipelines, runs and claims."""
        return self.storage_connection(APP_STORAGE)

    @property
    def claims_connection(self) -> StorageConnection:
        return self.storage_connection(CLAIMS_CONNECTION, fallback=APP_STORAGE)

    @property
    def claims_dir(self) -> str | None:
        return self.get(CLAIMS_DIR) or None

    @property
    def claims_max_age_hours(self) -> float:
        return self._positive(CLAIMS_MAX_AGE_HOURS, DEFAULT_CLAIMS_MAX_AGE_HOURS)

    @property
    def import_storage(self) -> StorageConnection:
        return self.storage_connection(IMPORT_STORAGE, fallback=APP_STORAGE)

    @property
    def storage_connection_strings(self) -> tuple[str, ...]:
        """Transfer accounts' connection strings: ``FERRY_STORAGE_CONNECTION_STRINGS`` (a JSON list),
        then ``AZURE_STORAGE_CONNECTION_STRING``."""
        found: list[str] = []
        raw = self.get(STORAGE_CONNECTION_STRINGS)
        if raw:
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"app setting {STORAGE_CONNECTION_STRINGS} must be a JSON list of strings")
            found += [expand_connection_string(v) for v in value]
        single = self.get(AZURE_STORAGE_CONNECTION_STRING)
        if single:
            found.append(expand_connection_string(single))
        return tuple(found)

    @property
    def keyvault_ca_bundle(self) -> str | None:
        return self.get(KEYVAULT_CA_BUNDLE) or None

    # -- registries ------------------------------------------------------------------------------
    @property
    def registry(self) -> str | None:
        """``FERRY_REGISTRY`` as ``host[:port]``, or None when unset."""
        return _host(self.get(REGISTRY)) or None

    @property
    def insecure_registries(self) -> frozenset[str]:
        return frozenset(h.strip() for h in self.get(INSECURE_REGISTRIES).split(",") if h.strip())

    @property
    def max_artifacts(self) -> int:
        return int(self._positive(MAX_ARTIFACTS, DEFAULT_MAX_ARTIFACTS, whole=True))

    def _positive(self, name: str, default: float, *, whole: bool = False) -> float:
        """Setting ``name`` as a positive number (``whole``: an integer); UsageError naming it otherwise."""
        raw = self.get(name)
        try:
            value = (int(raw) if whole else float(raw)) if raw else default
        except ValueError:
            value = 0
        if value <= 0:
            kind = "whole number" if whole else "number"
            raise UsageError(f"app setting {name} must be a positive {kind}, not {raw!r}")
        return value

    @property
    def retry_attempts(self) -> int:
        return int(self._positive(RETRY_ATTEMPTS, 5, whole=True))

    @property
    def retry_seconds(self) -> float:
        return self._positive(RETRY_SECONDS, 120.0)

    # -- the import trigger ----------------------------------------------------------------------
    @property
    def import_trigger_source(self) -> str:
        """``EventGrid`` or ``LogsAndContainerScan`` (the default, which polls)."""
        wanted = self.get(IMPORT_TRIGGER_SOURCE).replace(" ", "").lower()
        return "EventGrid" if wanted == "eventgrid" else "LogsAndContainerScan"

    # -- ARM -------------------------------------------------------------------------------------
    @property
    def arm_endpoint(self) -> str:
        return self.get(ARM_ENDPOINT) or DEFAULT_ARM_ENDPOINT

    @property
    def arm_ca_bundle(self) -> str | None:
        return self.get(ARM_CA_BUNDLE) or None

    @property
    def acr_handoff(self) -> bool:
        return self.get(ACR_IMPORT_HANDOFF).lower() == "true"

    @property
    def target_acr_resource_id(self) -> str | None:
        return self.get(TARGET_ACR_RESOURCE_ID) or None

    # -- the CLI's environment -------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        """``$FERRY_CACHE_DIR``, else ``$XDG_CACHE_HOME/ferry``, else ``~/.cache/ferry``."""
        base = self.get(CACHE_DIR)
        if base:
            return Path(base)
        return Path(self.get(XDG_CACHE_HOME) or Path.home() / ".cache") / "ferry"

    @property
    def docker_config(self) -> Path:
        """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
        base = self.get(DOCKER_CONFIG)
        return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def all_setting_names() -> frozenset[str]:
    """Every name this module defines: the contract the app's configuration is checked against."""
    return frozenset(value for key, value in globals().items()
                     if key.isupper() and isinstance(value, str) and not key.startswith(("DEFAULT_", "DEVELOPMENT_")))
