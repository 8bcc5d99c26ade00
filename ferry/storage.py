"""Azure Blob access: blob clients for the rest of Ferry, and blob copy/delete.

* :class:`BlobLocation` parses ``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`` and the
  path style of Azurite, ``http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB``. A SAS query is kept
  apart (``sas``) and is never shown: ``str()``/``display`` give the URL without it.
* Auth follows ACR's ``storageAccessMode``: :class:`ConnectionStringAuth` (local use),
  :class:`SasTokenAuth` (a SAS in the URL, or read from a Key Vault secret) and
  :class:`ManagedIdentityAuth` (``DefaultAzureCredential``). :func:`auto_auth` picks one.
* :func:`blob_client` derives clients from one pooled ``BlobServiceClient`` per (endpoint, auth).
* :func:`copy_blob` copies server-side (``start_copy_from_url`` with a read SAS on the source,
  polled to completion, then size and metadata verified) or by relay (parallel range reads
  staged as blocks with deterministic IDs, committed last; a re-run stages only missing blocks).
  :func:`start_server_copy` and :func:`server_copy_status` split the server-side copy for callers
  that poll on their own clock (Durable orchestrations).

Azure SDK errors are translated here into :class:`~ferry.errors.StorageError` and its subclasses;
messages are redacted and never carry a SAS signature or account key.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

from ferry.errors import (
    BlobNotFoundError,
    ConflictError,
    CredentialError,
    FerryError,
    IntegrityError,
    StorageAuthError,
    StorageError,
    UsageError,
)
from ferry.redact import redact

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobProperties, BlobServiceClient

__all__ = [
    "BlobLocation",
    "ConnectionStringAuth",
    "CopyBlobResult",
    "ManagedIdentityAuth",
    "SasTokenAuth",
    "StorageAuth",
    "auto_auth",
    "blob_client",
    "copy_blob",
    "delete_blob",
    "server_copy_status",
    "start_server_copy",
]

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 4 * MiB
#: What one ranged GET asks for at a time. The SDK's default first read is 32 MiB per stream, so an
#: import reading 8 blobs at once held hundreds of MB; 4 MiB keeps memory flat and was faster here.
READ_SIZE = 4 * MiB
_CLIENT_SIZES: dict[str, Any] = {"max_single_get_size": READ_SIZE, "max_chunk_get_size": READ_SIZE}
MAX_BLOCKS = 50_000  # Azure's limit of blocks per block blob
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"

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
        if not _ACCOUNT.match(account) and not _is_loopback_or_ip(host):
            raise UsageError(f"blob URL {shown!r}: {account!r} is not a valid storage account name")
        if not account:
            raise UsageError(f"blob URL {shown!r} names no storage account")
        if not _CONTAINER.match(container):
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
                         f"(--connection-string or ${CONNECTION_STRING_ENV})")


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


def env_connection_strings(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """Connection strings from ``$AZURE_STORAGE_CONNECTION_STRING`` (none if unset)."""
    value = (env if env is not None else os.environ).get(CONNECTION_STRING_ENV)
    return (value,) if value else ()


def auto_auth(location: BlobLocation, connection_strings: Sequence[str] = (), *,
              credential: Any = None) -> StorageAuth:
    """The auth a CLI user would expect: a SAS in the URL; else a connection string (given, then
    ``$AZURE_STORAGE_CONNECTION_STRING``) naming this account; else DefaultAzureCredential."""
    if location.sas:
        return SasTokenAuth()
    candidates = tuple(connection_strings) + env_connection_strings()
    for text in candidates:
        if parse_connection_string(text).get("accountname") == location.account:
            return ConnectionStringAuth(candidates)
    return ManagedIdentityAuth(credential)


# --------------------------------------------------------------------------------------------
# Clients


_clients: dict[tuple[Any, ...], BlobServiceClient] = {}
_clients_lock = threading.Lock()


def _sas_for(location: BlobLocation, auth: SasTokenAuth) -> str:
    if auth.secret_uri:
        from ferry.secrets import resolve_secret

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
            client = BlobServiceClient(endpoint, **_CLIENT_SIZES, credential={"account_name": parsed["accountname"],
                                                            "account_key": parsed.get("accountkey", "")})
        elif isinstance(auth, SasTokenAuth):
            from azure.core.credentials import AzureSasCredential

            client = BlobServiceClient(location.endpoint, credential=AzureSasCredential(_sas_for(location, auth)),
                                       **_CLIENT_SIZES)
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
            client = BlobServiceClient(location.endpoint, credential=credential, **_CLIENT_SIZES, **kwargs)
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


# --------------------------------------------------------------------------------------------
# Errors


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Translate azure-core errors raised inside into StorageError subclasses about `what`."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except FerryError:
        raise
    except ResourceNotFoundError as exc:
        code = getattr(exc, "error_code", None) or "not found"
        raise BlobNotFoundError(f"{what}: not found ({code})", status=404) from exc
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:  # a credential that could not get a token at all
            raise CredentialError(f"{what}: no Azure credential could authenticate: "
                                  f"{redact(_first_line(exc))}") from exc
        raise StorageAuthError(_auth_message(what, status, exc), status=status) from exc
    except ResourceExistsError as exc:
        raise ConflictError(f"{what}: already exists ({getattr(exc, 'error_code', None) or exc.status_code}); "
                            "use overwrite to replace it") from exc
    except HttpResponseError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise StorageAuthError(_auth_message(what, status, exc), status=status) from exc
        if status == 412:
            raise ConflictError(f"{what}: already exists (condition not met); use overwrite to replace it") from exc
        transient = status is None or status >= 500 or status in (408, 429)
        code = getattr(exc, "error_code", None)
        raise StorageError(f"{what}: storage answered {status}" + (f" ({code})" if code else ""),
                           status=status, transient=transient) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        message = _first_line(exc)
        if "Bearer token authentication is not permitted" in message:
            raise UsageError(f"{what}: Azure AD (managed identity) auth needs an https endpoint") from exc
        raise StorageError(f"{what}: cannot reach storage: {redact(message)}", transient=True) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _auth_message(what: str, status: int | None, exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return (f"{what}: access denied ({status}" + (f" {code}" if code else "") + "): the SAS may be expired or "
            "lack permissions, or the key or identity is not allowed")


# --------------------------------------------------------------------------------------------
# Copy


class BlobProgress(Protocol):
    """Receives copy progress (the shape of :class:`ferry.copy.ProgressListener`'s first two methods)."""

    def planned(self, total_bytes: int, total_blobs: int, artifacts: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass
class CopyBlobResult:
    """What :func:`copy_blob` did. ``blocks_*`` are for relay copies; ``copy_id`` for server copies."""

    source: str
    destination: str
    mode: str
    size: int
    metadata: dict[str, str]
    seconds: float = 0.0
    copy_id: str | None = None
    blocks_total: int = 0
    blocks_staged: int = 0
    blocks_skipped: int = 0
    bytes_moved: int = 0


def _exists(client: BlobClient, what: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    with translate_errors(what):
        try:
            client.get_blob_properties()
            return True
        except ResourceNotFoundError:
            return False


def _refuse_existing(dst: BlobLocation, client: BlobClient, overwrite: bool) -> None:
    if not overwrite and _exists(client, f"destination blob {dst}"):
        raise ConflictError(f"destination blob {dst} already exists; pass overwrite to replace it")


def _source_properties(src: BlobLocation, client: BlobClient) -> BlobProperties:
    with translate_errors(f"source blob {src}"):
        return client.get_blob_properties()


def source_read_url(src: BlobLocation, auth: StorageAuth, *, lifetime: timedelta = timedelta(hours=1)) -> str:
    """`src`'s URL with a read SAS the target service can use (contains a secret: never log it).

    A SAS in the URL (or from Key Vault) is used as is; with an account key a short-lived read
    SAS is generated; with Azure AD a user delegation SAS."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    if isinstance(auth, SasTokenAuth):
        return f"{src.url}?{_sas_for(src, auth)}"
    now = datetime.now(UTC)
    start, expiry = now - timedelta(minutes=5), now + lifetime
    if isinstance(auth, ConnectionStringAuth):
        parsed = auth.for_account(src.account)
        key = parsed.get("accountkey")
        if not key:
            raise UsageError(f"the connection string for account {src.account!r} has no AccountKey to sign a SAS")
        sas = generate_blob_sas(src.account, src.container, src.blob, account_key=key,
                                permission=BlobSasPermissions(read=True), start=start, expiry=expiry)
    else:
        service = service_client(src, auth)
        with translate_errors(f"user delegation key for {src.account!r}"):
            delegation = service.get_user_delegation_key(start, expiry)
        sas = generate_blob_sas(src.account, src.container, src.blob, user_delegation_key=delegation,
                                permission=BlobSasPermissions(read=True), start=start, expiry=expiry)
    return f"{src.url}?{sas}"


def start_server_copy(src: BlobLocation, dst: BlobLocation, *, src_auth: StorageAuth | None = None,
                      dst_auth: StorageAuth | None = None, overwrite: bool = False) -> str:
    """Start a server-side copy of `src` to `dst` (the source's metadata travels with it); the copy id.

    Without `overwrite`, an existing destination is a ConflictError naming it."""
    from azure.core import MatchConditions

    src_auth = src_auth if src_auth is not None else auto_auth(src)
    dst_auth = dst_auth if dst_auth is not None else auto_auth(dst)
    dst_client = blob_client(dst, dst_auth)
    _source_properties(src, blob_client(src, src_auth))
    _refuse_existing(dst, dst_client, overwrite)
    source_url = source_read_url(src, src_auth)
    kwargs: dict[str, Any] = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
    with translate_errors(f"server-side copy {src} -> {dst}"):
        answer = dst_client.start_copy_from_url(source_url, requires_sync=False, **kwargs)
    copy_id = str(answer.get("copy_id") or "")
    log.info("server-side copy %s started: %s -> %s", copy_id, src, dst)
    return copy_id


def server_copy_status(dst: BlobLocation, auth: StorageAuth | None = None) -> tuple[str, int, int]:
    """``(status, bytes_copied, total_bytes)`` of the last copy into `dst`; status is
    ``pending``, ``success``, ``failed``, ``aborted`` (or ``none`` if the blob never was a copy target)."""
    client = blob_client(dst, auth if auth is not None else auto_auth(dst))
    with translate_errors(f"destination blob {dst}"):
        props = client.get_blob_properties()
    copy = props.copy
    status = str(copy.status or "none") if copy else "none"
    done, total = 0, int(props.size or 0)
    if copy and copy.progress:
        left, _, right = str(copy.progress).partition("/")
        with suppress(ValueError):
            done, total = int(left), int(right)
    elif status == "success":
        done = total
    return status, done, total


def _copy_failure(dst: BlobLocation, client: BlobClient, status: str) -> StorageError:
    with translate_errors(f"destination blob {dst}"):
        props = client.get_blob_properties()
    reason = redact(str(props.copy.status_description or "")) if props.copy else ""
    return StorageError(f"server-side copy into {dst} {status}" + (f": {reason}" if reason else ""))


def _verify(src: BlobLocation, dst: BlobLocation, source: BlobProperties, client: BlobClient) -> BlobProperties:
    with translate_errors(f"destination blob {dst}"):
        target = client.get_blob_properties()
    if target.size != source.size:
        raise IntegrityError(f"copy {src} -> {dst}: destination has {target.size} bytes, source {source.size}")
    if _norm_meta(target.metadata) != _norm_meta(source.metadata):
        raise IntegrityError(f"copy {src} -> {dst}: destination metadata differs from the source's")
    return target


def verify_copy(src: BlobLocation, dst: BlobLocation, *, src_auth: StorageAuth | None = None,
                dst_auth: StorageAuth | None = None) -> int:
    """Raise IntegrityError unless `dst` has the size and metadata of `src`; the size."""
    source = _source_properties(src, blob_client(src, src_auth if src_auth is not None else auto_auth(src)))
    target = _verify(src, dst, source, blob_client(dst, dst_auth if dst_auth is not None else auto_auth(dst)))
    return int(target.size or 0)


def _norm_meta(meta: dict[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (meta or {}).items()}


def copy_blob(
    src: BlobLocation,
    dst: BlobLocation,
    *,
    src_auth: StorageAuth | None = None,
    dst_auth: StorageAuth | None = None,
    mode: Literal["server", "relay"] = "server",
    overwrite: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
    parallel: int = 4,
    progress: BlobProgress | None = None,
    poll_interval: float = 0.2,
    timeout: float | None = None,
) -> CopyBlobResult:
    """Copy the blob `src` to `dst`, preserving metadata (and, for relay, content settings).

    ``mode="server"``: the target service pulls the source with a read SAS; waited to completion
    (`timeout` seconds, None for no limit), then size and metadata are verified.
    ``mode="relay"``: Ferry reads `parallel` ranges of `block_size` at a time and stages them as
    blocks, then commits the block list. Memory stays under ``parallel * block_size``. A re-run
    after an interruption skips blocks already staged (``blocks_skipped``).

    Without `overwrite` an existing `dst` is a ConflictError naming it. Auth defaults to
    :func:`auto_auth` per location.
    """
    if mode not in ("server", "relay"):
        raise UsageError(f"copy mode {mode!r} must be 'server' or 'relay'")
    if block_size < 1 or block_size > 4000 * MiB:
        raise UsageError(f"block_size {block_size} must be between 1 byte and 4000 MiB")
    if parallel < 1:
        raise UsageError(f"parallel {parallel} must be at least 1")
    if src.without_sas() == dst.without_sas():
        raise UsageError(f"source and destination are the same blob: {src}")
    src_auth = src_auth if src_auth is not None else auto_auth(src)
    dst_auth = dst_auth if dst_auth is not None else auto_auth(dst)
    started = time.monotonic()
    if mode == "server":
        result = _server_copy(src, dst, src_auth, dst_auth, overwrite, progress, poll_interval, timeout)
    else:
        result = _relay_copy(src, dst, src_auth, dst_auth, overwrite, block_size, parallel, progress)
    result.seconds = time.monotonic() - started
    return result


def _server_copy(src: BlobLocation, dst: BlobLocation, src_auth: StorageAuth, dst_auth: StorageAuth,
                 overwrite: bool, progress: BlobProgress | None, poll_interval: float,
                 timeout: float | None) -> CopyBlobResult:
    source = _source_properties(src, blob_client(src, src_auth))
    if progress:
        progress.planned(source.size, 1, 1)
    copy_id = start_server_copy(src, dst, src_auth=src_auth, dst_auth=dst_auth, overwrite=overwrite)
    dst_client = blob_client(dst, dst_auth)
    deadline = None if timeout is None else time.monotonic() + timeout
    reported, delay = 0, poll_interval
    while True:
        status, done, _total = server_copy_status(dst, dst_auth)
        if progress and done > reported:
            progress.advance(done - reported)
            reported = done
        if status == "success":
            break
        if status in ("failed", "aborted"):
            raise _copy_failure(dst, dst_client, status)
        if deadline is not None and time.monotonic() > deadline:
            raise StorageError(f"server-side copy into {dst} still {status} after {timeout:.0f}s "
                               f"(copy id {copy_id})", transient=True)
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
    target = _verify(src, dst, source, dst_client)
    if progress and target.size > reported:
        progress.advance(target.size - reported)
    return CopyBlobResult(src.url, dst.url, "server", int(target.size), dict(target.metadata or {}),
                          copy_id=copy_id, bytes_moved=int(target.size))


def relay_block_ids(source: BlobProperties, block_size: int) -> list[tuple[str, int, int]]:
    """``(block_id, offset, length)`` for each block of a relay copy of `source`.

    IDs are base64 of a fixed-width string: a tag derived from the source's ETag and the block
    size (so blocks staged for another source version are never reused), then the block index."""
    size = int(source.size or 0)
    count = -(-size // block_size)
    if count > MAX_BLOCKS:
        raise UsageError(f"block_size {block_size} splits {size} bytes into {count} blocks; "
                         f"Azure allows {MAX_BLOCKS}: use a larger block size")
    tag = hashlib.sha256(f"{source.etag}|{block_size}".encode()).hexdigest()[:16]
    ids = []
    for index in range(count):
        offset = index * block_size
        block_id = base64.b64encode(f"ferry-{tag}-{index:06d}".encode()).decode()
        ids.append((block_id, offset, min(block_size, size - offset)))
    return ids


def _uncommitted_blocks(client: BlobClient, dst: BlobLocation) -> dict[str, int]:
    from azure.core.exceptions import ResourceNotFoundError

    with translate_errors(f"destination blob {dst}"):
        try:
            _committed, uncommitted = client.get_block_list("uncommitted")
        except ResourceNotFoundError:
            return {}
    return {block.id: int(block.size) for block in uncommitted}


def _relay_copy(src: BlobLocation, dst: BlobLocation, src_auth: StorageAuth, dst_auth: StorageAuth,
                overwrite: bool, block_size: int, parallel: int,
                progress: BlobProgress | None) -> CopyBlobResult:
    from azure.core import MatchConditions
    from azure.storage.blob import BlobBlock

    src_client = blob_client(src, src_auth)
    dst_client = blob_client(dst, dst_auth)
    source = _source_properties(src, src_client)
    _refuse_existing(dst, dst_client, overwrite)
    blocks = relay_block_ids(source, block_size)
    staged = _uncommitted_blocks(dst_client, dst)
    todo = [(bid, off, length) for bid, off, length in blocks if staged.get(bid) != length]
    skipped = len(blocks) - len(todo)
    if progress:
        progress.planned(int(source.size or 0), 1, 1)
        if skipped:
            progress.advance(sum(length for bid, _, length in blocks if staged.get(bid) == length))

    def move(block_id: str, offset: int, length: int) -> int:
        with translate_errors(f"source blob {src} (bytes {offset}-{offset + length - 1})"):
            data = src_client.download_blob(offset, length, max_concurrency=1,
                                             etag=source.etag, match_condition=MatchConditions.IfNotModified).readall()
        if len(data) != length:
            raise IntegrityError(f"source blob {src}: read {len(data)} bytes at {offset}, expected {length}")
        with translate_errors(f"destination blob {dst} (block at {offset})"):
            dst_client.stage_block(block_id, data, length=length)
        return length

    moved = 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="ferry-relay") as pool:
        pending: set[Future[int]] = set()
        queue = iter(todo)
        try:
            while True:
                while len(pending) < parallel:  # at most `parallel` blocks in memory
                    item = next(queue, None)
                    if item is None:
                        break
                    pending.add(pool.submit(move, *item))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    nbytes = future.result()
                    moved += nbytes
                    if progress:
                        progress.advance(nbytes)
        finally:
            for future in pending:
                future.cancel()
    kwargs: dict[str, Any] = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
    with translate_errors(f"destination blob {dst}"):
        dst_client.commit_block_list([BlobBlock(block_id=bid) for bid, _, _ in blocks],
                                     metadata=dict(source.metadata or {}),
                                     content_settings=source.content_settings, **kwargs)
    target = _verify(src, dst, source, dst_client)
    return CopyBlobResult(src.url, dst.url, "relay", int(target.size), dict(target.metadata or {}),
                          blocks_total=len(blocks), blocks_staged=len(todo), blocks_skipped=skipped,
                          bytes_moved=moved)


def delete_blob(location: BlobLocation, auth: StorageAuth | None = None, *, missing_ok: bool = False) -> bool:
    """Delete the blob (with its snapshots). True if deleted; False if absent and `missing_ok`."""
    from azure.core.exceptions import ResourceNotFoundError

    client = blob_client(location, auth)
    with translate_errors(f"blob {location}"):
        try:
            client.delete_blob(delete_snapshots="include")
        except ResourceNotFoundError:
            if missing_ok:
                return False
            raise
    return True

