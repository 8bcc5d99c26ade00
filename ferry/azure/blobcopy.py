"""Copy a blob between storage accounts: server-side, or relayed through this machine.

:func:`copy_blob` copies server-side (``start_copy_from_url`` with a read SAS on the source,
polled to completion, then size and metadata verified) or by relay (parallel range reads staged
as blocks with deterministic IDs, committed last; a re-run stages only missing blocks).
:func:`start_server_copy` and :func:`server_copy_status` split the server-side copy for callers
that poll on their own clock (Durable orchestrations).

May be imported by ``ferry/jobs``, ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ferry.azure.blob import (
    DEFAULT_BLOCK_SIZE,
    MAX_BLOCKS,
    BlobLocation,
    ConnectionStringAuth,
    MiB,
    SasTokenAuth,
    StorageAuth,
    auto_auth,
    blob_client,
    sas_for,
    service_client,
)
from ferry.azure.errors import translate_azure_errors
from ferry.errors import ConflictError, IntegrityError, StorageError, UsageError
from ferry.redact import redact

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobProperties

log = logging.getLogger(__name__)


class BlobProgress(Protocol):
    """Receives copy progress (the shape of :class:`ferry.plan.ProgressListener`'s first two methods)."""

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

    with translate_azure_errors(what):
        try:
            client.get_blob_properties()
            return True
        except ResourceNotFoundError:
            return False


def _refuse_existing(dst: BlobLocation, client: BlobClient, overwrite: bool) -> None:
    if not overwrite and _exists(client, f"destination blob {dst}"):
        raise ConflictError(f"destination blob {dst} already exists (--overwrite replaces it)")


def _source_properties(src: BlobLocation, client: BlobClient) -> BlobProperties:
    with translate_azure_errors(f"source blob {src}"):
        return client.get_blob_properties()


def source_read_url(src: BlobLocation, auth: StorageAuth, *, lifetime: timedelta = timedelta(hours=1)) -> str:
    """`src`'s URL with a read SAS the target service can use (contains a secret: never log it).

    A SAS in the URL (or from Key Vault) is used as is; with an account key a short-lived read
    SAS is generated; with Azure AD a user delegation SAS."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    if isinstance(auth, SasTokenAuth):
        return f"{src.url}?{sas_for(src, auth)}"
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
        with translate_azure_errors(f"user delegation key for {src.account!r}"):
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
    with translate_azure_errors(f"server-side copy {src} -> {dst}"):
        answer = dst_client.start_copy_from_url(source_url, requires_sync=False, **kwargs)
    copy_id = str(answer.get("copy_id") or "")
    log.info("server-side copy %s started: %s -> %s", copy_id, src, dst)
    return copy_id


def server_copy_status(dst: BlobLocation, auth: StorageAuth | None = None) -> tuple[str, int, int]:
    """``(status, bytes_copied, total_bytes)`` of the last copy into `dst`; status is
    ``pending``, ``success``, ``failed``, ``aborted`` (or ``none`` if the blob never was a copy target)."""
    client = blob_client(dst, auth if auth is not None else auto_auth(dst))
    with translate_azure_errors(f"destination blob {dst}"):
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
    with translate_azure_errors(f"destination blob {dst}"):
        props = client.get_blob_properties()
    reason = redact(str(props.copy.status_description or "")) if props.copy else ""
    return StorageError(f"server-side copy into {dst} {status}" + (f": {reason}" if reason else ""))


def _verify(src: BlobLocation, dst: BlobLocation, source: BlobProperties, client: BlobClient) -> BlobProperties:
    with translate_azure_errors(f"destination blob {dst}"):
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

    with translate_azure_errors(f"destination blob {dst}"):
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
        with translate_azure_errors(f"source blob {src} (bytes {offset}-{offset + length - 1})"):
            data = src_client.download_blob(offset, length, max_concurrency=1,
                                             etag=source.etag, match_condition=MatchConditions.IfNotModified).readall()
        if len(data) != length:
            raise IntegrityError(f"source blob {src}: read {len(data)} bytes at {offset}, expected {length}")
        with translate_azure_errors(f"destination blob {dst} (block at {offset})"):
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
    with translate_azure_errors(f"destination blob {dst}"):
        dst_client.commit_block_list([BlobBlock(block_id=bid) for bid, _, _ in blocks],
                                     metadata=dict(source.metadata or {}),
                                     content_settings=source.content_settings, **kwargs)
    target = _verify(src, dst, source, dst_client)
    return CopyBlobResult(src.url, dst.url, "relay", int(target.size), dict(target.metadata or {}),
                          blocks_total=len(blocks), blocks_staged=len(todo), blocks_skipped=skipped,
                          bytes_moved=moved)


