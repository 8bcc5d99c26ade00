"""App settings shared by the Functions app's rooms: the app's own storage account."""

from __future__ import annotations

import os

from ferry.errors import UsageError

APP_STORAGE_SETTING = "AzureWebJobsStorage"
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


def setting_connection_string(name: str, *, fallback: str | None = None) -> str:
    """The connection string in app setting ``name`` (else ``fallback``'s), expanded; UsageError if unset."""
    value = os.environ.get(name) or (os.environ.get(fallback) if fallback else None)
    if not value or not value.strip():
        raise UsageError(f"app setting {name} is not set" + (f" (nor {fallback})" if fallback else ""))
    return expand_connection_string(value)


def app_storage_connection_string() -> str:
    """``AzureWebJobsStorage``: the task hub's account, which also keeps pipelines and claims."""
    return setting_connection_string(APP_STORAGE_SETTING)
