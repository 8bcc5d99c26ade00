"""Azure Blob access: where a blob is, how Ferry authenticates to it, pooled clients, delete.

* :class:`BlobLocation` parses ``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`` and the
  path style of Azurite, ``http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB``. A SAS query is kept
  apart (``sas``) and is never shown: ``str()``/``display`` give the URL without it.
* Auth follows ACR's ``storageAccessMode``: :class:`ConnectionStringAuth` (local use),
  :class:`SasTokenAuth` (a SAS in the URL, or read from a Key Vault secret) and
  :class:`ManagedIdentityAuth` (``DefaultAzureCredential``). :func:`auto_auth` picks one.
* :func:`blob_client` derives clients from one pooled ``BlobServiceClient`` per (endpoint, auth).

Copies between accounts are in :mod:`ferry.azure.blobcopy`. Azure SDK errors are translated by
:mod:`ferry.azure.errors`. May be imported by ``ferry/archive``, ``ferry/jobs``, ``ferry/transfer``
and the faces.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ferry.azure.budget import blob_options
from ferry.azure.errors import translate_azure_errors
from ferry.errors import ConflictError, UsageError
from ferry.redact import redact

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobServiceClient

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 4 * MiB
#: What one ranged GET asks for at a time. The SDK's default first read is 32 MiB per stream, so an
#: import reading 8 blobs at once held hundreds of MB; 4 MiB keeps memory flat and was faster here.
READ_SIZE = 4 * MiB
_CLIENT_SIZES: dict[str, Any] = {"max_single_get_size": READ_SIZE, "max_chunk_get_size": READ_SIZE}
MAX_BLOCKS = 50_000  # Azure's limit of blocks per block blob

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(\$root|\$logs|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")


# --------------------------------------------------------------------------------------------
# Locations


def _is_loopback_or_ip(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class BlobLocation:
    """One blob. ``endpoint`` is the account's blob endpoint (``https://acct.blob.core.windows.net``
    or ``http://127.0.0.1:PORT/acct``); ``sas`` is the URL's query without ``?``, never shown."""

    endpoint: str
    account: str
    container: str
    blob: str
    sas: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> BlobLocation:
        """Parse a blob URL; UsageError naming the (redacted) URL if it is not one."""
        shown = redact(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise UsageError(f"blob URL {shown!r} must be https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB "
                             "or http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB")
        if parts.username or parts.password or parts.fragment:
            raise UsageError(f"blob URL {shown!r} must not carry user info or a fragment")
        segments = parts.path.lstrip("/").split("/")
        netloc = parts.netloc
        if _is_loopback_or_ip(host):  # path style: /ACCOUNT/CONTAINER/BLOB
            if len(segments) < 3:
                raise UsageError(f"blob URL {shown!r} must be http://HOST:PORT/ACCOUNT/CONTAINER/BLOB")
            account, segments = segments[0], segments[1:]
            endpoint = f"{parts.scheme}://{netloc}/{account}"
        else:
            account = host.split(".", 1)[0]
            if ".blob." not in host:
                raise UsageError(f"blob URL {shown!r}: host {host!r} is not a blob endpoint (ACCOUNT.blob.core...)")
            endpoint = f"{parts.scheme}://{netloc}"
        if len(segments) < 2 or not segments[1]:
            raise UsageError(f"blob URL {shown!r} names no blob: expected .../CONTAINER/BLOB")
        container, blob = segments[0], unquote("/".join(segments[1:]))
        if not _ACCOUNT.fullmatch(account) and not _is_loopback_or_ip(host):
            raise UsageError(f"blob URL {shown!r}: {account!r} is not a valid storage account name")
        if not account:
            raise UsageError(f"blob URL {shown!r} names no storage account")
        if not _CONTAINER.fullmatch(container):
            raise UsageError(f"blob URL {shown!r}: {container!r} is not a valid container name")
        if not blob or blob.endswith("/") or len(blob) > 1024:
            raise UsageError(f"blob URL {shown!r}: {blob!r} is not a valid blob name")
        return cls(endpoint, account, container, blob, parts.query or None)

    @property
    def url(self) -> str:
        """The blob URL without any query (safe to show)."""
        return f"{self.endpoint}/{self.container}/{quote(self.blob, safe='/')}"

    @property
    def display(self) -> str:
        return self.url

    def __str__(self) -> str:
        return self.url

    def without_sas(self) -> BlobLocation:
        return BlobLocation(self.endpoint, self.account, self.container, self.blob)


# --------------------------------------------------------------------------------------------
# Auth


@dataclass(frozen=True)
class ConnectionStringAuth:
    """Account key auth from connection strings; the one whose ``AccountName`` matches the
    location's account is used. Several may be given (export/copy spans two accounts)."""

    connection_strings: tuple[str, ...]

    def __repr__(self) -> str:
        return f"ConnectionStringAuth(<{len(self.connection_strings)} connection string(s)>)"

    def for_account(self, account: str) -> dict[str, str]:
        """The parsed connection string for `account`; UsageError (redacted) when none matches."""
        for text in self.connection_strings:
            parsed = parse_connection_string(text)
            if parsed.get("accountname") == account:
                return parsed
        raise UsageError(f"no connection string for storage account {account!r} "
                         "(--connection-string, $AZURE_STORAGE_CONNECTION_STRING or the app setting "
                         "FERRY_STORAGE_CONNECTION_STRINGS)")


@dataclass(frozen=True)
class SasTokenAuth:
    """A SAS: the one in the blob URL, or (``secret_uri``) the value of a Key Vault secret, read
    with `credential` (default ``DefaultAzureCredential``)."""

    secret_uri: str | None = None
    credential: Any = field(default=None, compare=False, repr=False)
    ca_bundle: str | None = None


@dataclass(frozen=True)
class ManagedIdentityAuth:
    """Azure AD: `credential`, by default ``DefaultAzureCredential()`` (managed identity in Azure)."""

    credential: Any = field(default=None, compare=False, repr=False)
    connection_verify: str | bool | None = None  # CA bundle path for a private TLS endpoint


StorageAuth = ConnectionStringAuth | SasTokenAuth | ManagedIdentityAuth


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` with lower-cased keys. Malformed parts are errors that show no value."""
    out: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError("a storage connection string is malformed (expected Key=Value;...)")
        out[key.strip().lower()] = value.strip()
    return out


def auto_auth(location: BlobLocation, connection_strings: Sequence[str] = (), *,
              credential: Any = None) -> StorageAuth:
    """The auth a CLI user would expect: a SAS in the URL; else one of ``connection_strings`` (the
    caller's, then :attr:`ferry.settings.Settings.storage_connection_strings`) naming this account;
    else DefaultAzureCredential."""
    if location.sas:
        return SasTokenAuth()
    candidates = tuple(connection_strings)
    for text in candidates:
        if parse_connection_string(text).get("accountname") == location.account:
            return ConnectionStringAuth(candidates)
    return ManagedIdentityAuth(credential)


# --------------------------------------------------------------------------------------------
# Clients


_clients: dict[tuple[Any, ...], BlobServiceClient] = {}
_clients_lock = threading.Lock()


def sas_for(location: BlobLocation, auth: SasTokenAuth) -> str:
    if auth.secret_uri:
        from ferry.azure.keyvault import resolve_secret

        return resolve_secret(auth.secret_uri, auth.credential, ca_bundle=auth.ca_bundle).lstrip("?")
    if not location.sas:
        raise UsageError(f"blob URL {location} carries no SAS token and no Key Vault secret was given")
    return location.sas


def service_client(location: BlobLocation, auth: StorageAuth) -> BlobServiceClient:
    """The pooled ``BlobServiceClient`` for `location`'s account and `auth`."""
    from azure.storage.blob import BlobServiceClient

    key: tuple[Any, ...] = (location.endpoint, auth)
    if isinstance(auth, SasTokenAuth) and not auth.secret_uri:
        key += (location.sas,)
    if isinstance(auth, ManagedIdentityAuth | SasTokenAuth) and auth.credential is not None:
        key += (id(auth.credential),)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        if isinstance(auth, ConnectionStringAuth):
            parsed = auth.for_account(location.account)
            endpoint = parsed.get("blobendpoint") or location.endpoint
            client = BlobServiceClient(endpoint, **_CLIENT_SIZES, **blob_options(),
                                       credential={"account_name": parsed["accountname"],
                                                            "account_key": parsed.get("accountkey", "")})
        elif isinstance(auth, SasTokenAuth):
            from azure.core.credentials import AzureSasCredential

            client = BlobServiceClient(location.endpoint, credential=AzureSasCredential(sas_for(location, auth)),
                                       **_CLIENT_SIZES, **blob_options())
        else:
            if not location.endpoint.startswith("https://"):
                raise UsageError(f"blob URL {location}: Azure AD (managed identity) auth needs an https "
                                 "endpoint; use a SAS or a connection string for plain http")
            credential = auth.credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            kwargs: dict[str, Any] = {}
            if auth.connection_verify is not None:
                kwargs["connection_verify"] = auth.connection_verify
            client = BlobServiceClient(location.endpoint, credential=credential, **_CLIENT_SIZES, **kwargs,
                                       **blob_options(**kwargs))
        _clients[key] = client
        return client


def blob_client(location: BlobLocation, auth: StorageAuth | None = None) -> BlobClient:
    """A ``BlobClient`` for `location`, derived from the pooled service client (auth: :func:`auto_auth`)."""
    auth = auth if auth is not None else auto_auth(location)
    return service_client(location, auth).get_blob_client(location.container, location.blob)


def clear_client_cache() -> None:
    """Close and forget every pooled service client."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()



def delete_blob(location: BlobLocation, auth: StorageAuth | None = None, *, missing_ok: bool = False,
                etag: str | None = None) -> bool:
    """Delete the blob (with its snapshots). True if deleted; False if absent and `missing_ok`.
    With ``etag``, only that version: ConflictError if the blob has been rewritten since."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    client = blob_client(location, auth)
    condition: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
    with translate_azure_errors(f"blob {location}"):
        try:
            client.delete_blob(delete_snapshots="include", **condition)
        except ResourceNotFoundError:
            if missing_ok:
                return False
            raise
        except ResourceModifiedError as exc:
            raise ConflictError(f"blob {location} was rewritten after it was read (its ETag changed)") from exc
    return True
