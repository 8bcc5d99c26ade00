"""Where an archive's bytes go while it is written: a local file or an Azure block blob.

The archive destination (:mod:`ferry.transports.archive`) lays the tar out and streams each
entry's data to a store; the store makes the result appear whole, at once, or not at all.

* :class:`FileStore` writes a temporary file beside the target with ``pwrite`` at each entry's
  precomputed offset, and renames it onto the target when published.
* :class:`BlockBlobStore` stages each entry (header, data, padding) as blocks and commits the block
  list when published. Small entries (manifests, the index) get blocks named by their SHA-256. A
  blob entry verified while it passes (``verified=True``) is not hashed again: its blocks' IDs
  derive from a random nonce of the store, and once every block is staged, verified, a marker block
  naming the nonce is staged (a one-block entry's block is its marker). A re-run
  (:meth:`BlockBlobStore.holds`) reuses an entry only through its marker: a failed entry's blocks
  carry a nonce no marker names, and concurrent runs never share a block ID.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ferry.archive import format as fmt
from ferry.errors import FerryError, UsageError

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

#: Azure allows 50,000 blocks in a block blob, of up to 4000 MiB each.
MAX_BLOCKS = 50_000
MAX_BLOCK_SIZE = 4000 * 1024 * 1024


class ArchiveStore(Protocol):
    """The byte sink of an archive. ``write_entry`` may be called from several threads at once."""

    name: str
    blocks_skipped: int

    def exists(self) -> bool:
        """Whether the final target exists already."""
        ...

    def begin(self, layout: fmt.ArchivePlan, *, resume: bool = True) -> None:
        """Get ready for the entries of ``layout``; ``resume=False``: nothing of it is stored yet
        (the plan step found nothing), so look for nothing."""
        ...

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes], *, verified: bool = False) -> int:
        """Store exactly ``entry.size`` bytes of data for ``entry``; returns the bytes received.
        ``verified``: ``chunks`` raises before its last chunk unless the bytes match the digest the
        entry is named after, so the store need not check them itself."""
        ...

    def holds(self, entry: fmt.Entry) -> bool:
        """Whether an earlier, interrupted run of this archive left ``entry`` whole and verified
        (it then counts as written by this one)."""
        ...

    def seal(self, written: set[str]) -> None:
        """Finish the archive with the entries named in ``written``; others are left out or renamed."""
        ...

    def publish(self, metadata: dict[str, str], *, overwrite: bool) -> None:
        """Make the sealed archive visible at its target, atomically."""
        ...

    def abort(self) -> None:
        """Drop whatever was written, unless it was published."""
        ...

    def export_state(self) -> dict[str, Any]:
        """What another process needs to seal this archive (see :meth:`import_state`)."""
        ...

    def import_state(self, state: dict[str, Any]) -> None:
        ...


class FileStore:
    """A local file, written under a temporary name and renamed when published."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.temporary = self.path.with_name(f"{self.path.name}.partial-{uuid.uuid4().hex}")
        self.blocks_skipped = 0
        self._fd: int | None = None
        self._layout: fmt.ArchivePlan | None = None
        self._published = False

    def exists(self) -> bool:
        return self.path.exists()

    def begin(self, layout: fmt.ArchivePlan, *, resume: bool = True) -> None:
        self._layout = layout
        try:
            self.temporary.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            os.ftruncate(self._fd, layout.total_size)
        except OSError as exc:
            raise UsageError(f"cannot write archive {self.path}: {exc.strerror or exc}") from exc

    def holds(self, entry: fmt.Entry) -> bool:
        return False  # a temporary file is this run's own

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes], *, verified: bool = False) -> int:
        written = 0
        for chunk in chunks:
            if written + len(chunk) > entry.size:
                raise FerryError(f"{entry.name}: more than the {entry.size} bytes planned")
            self._pwrite(chunk, entry.data_offset + written)
            written += len(chunk)
        return written

    def seal(self, written: set[str]) -> None:
        if self._layout is None or self._fd is None:
            raise FerryError(f"archive {self.name}: sealed before it was begun")
        unused = 0
        for entry in self._layout.entries:
            name = entry.name
            if name not in written:
                name = f"{fmt.UNUSED_DIR}{unused}"
                unused += 1
            self._pwrite(fmt.tar_header(name, entry.size), entry.header_offset)
        self._pwrite(fmt.END_OF_ARCHIVE, self._layout.total_size - len(fmt.END_OF_ARCHIVE))
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None

    def publish(self, metadata: dict[str, str], *, overwrite: bool) -> None:
        if self.path.exists() and not overwrite:
            raise UsageError(f"archive {self.path} already exists; use --overwrite (OverwriteBlobs) to replace it")
        os.replace(self.temporary, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._published = True

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._published:
            self.temporary.unlink(missing_ok=True)

    def export_state(self) -> dict[str, Any]:
        raise UsageError(f"archive {self.name}: a local file is written by one process; "
                         "fan-out across activities needs a blob URL")

    def import_state(self, state: dict[str, Any]) -> None:
        self.export_state()

    def _pwrite(self, data: bytes, offset: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            count = os.pwrite(self._fd, view, offset)
            view, offset = view[count:], offset + count


def block_id(data: bytes | memoryview) -> str:
    """A block's ID: the hex SHA-256 of its bytes. All IDs are 64 characters, Azure's limit before
    the base64 encoding the SDK applies (and every ID of a blob must have the same length)."""
    return hashlib.sha256(data).hexdigest()


def _entry_key(entry: fmt.Entry, block_size: int) -> str:
    """31 hex characters naming an entry's layout: its name (the digest), size and block size."""
    return hashlib.sha256(f"{entry.name}:{entry.size}:{block_size}".encode()).hexdigest()[:31]


def verified_block_id(nonce: str, entry: fmt.Entry, block_size: int, index: int) -> str:
    """Block ``index`` of a verified entry staged by the store with ``nonce`` ('v' + 63 hex)."""
    return "v" + hashlib.sha256(f"{nonce}:{entry.name}:{entry.size}:{block_size}:{index}".encode()).hexdigest()[:63]


def marker_id(nonce: str, entry: fmt.Entry, block_size: int) -> str:
    """The marker a store stages once every block of ``entry`` is staged and verified: 'm', the
    entry's key, and the nonce of its blocks (32 hex), so a re-run can name those blocks."""
    return "m" + _entry_key(entry, block_size) + nonce


class BlockBlobStore:
    """An Azure block blob (see the module docstring). Blocks of ``block_size`` (4 MiB; doubled past
    Azure's 50,000 blocks) fill at most ``parallel`` reusable buffers, all an export's byte memory."""

    def __init__(self, client: BlobClient, name: str, *, block_size: int = 4 * 1024 * 1024,
                 parallel: int = 4) -> None:
        self.client = client
        self.name = name
        self.block_size = block_size
        self.blocks_skipped = 0
        self.blocks_staged = 0
        #: Uncommitted blocks :meth:`begin` found (an earlier, interrupted export's).
        self.blocks_found = 0
        self._layout: fmt.ArchivePlan | None = None
        self._staged: set[str] = set()
        self._nonce = uuid.uuid4().hex
        self._markers: dict[str, list[str]] = {}  # entry key -> nonces of its markers
        self._pieces: dict[str, list[str]] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="ferry-stage")
        self._parallel = parallel
        self._buffers = _Buffers(block_size, parallel)

    def exists(self) -> bool:
        from ferry.azure.errors import translate_azure_errors

        with translate_azure_errors(f"archive {self.name}"):
            return bool(self.client.exists())

    def begin(self, layout: fmt.ArchivePlan, *, resume: bool = True) -> None:
        """Without ``resume`` the uncommitted block list is not read: a Durable batch of a fresh
        export would otherwise list every block staged so far (O(n) each, O(n^2) in all)."""
        from azure.core.exceptions import ResourceNotFoundError

        from ferry.azure.errors import translate_azure_errors

        self._layout = layout
        while self._blocks(layout) > MAX_BLOCKS and self.block_size < MAX_BLOCK_SIZE:
            # A huge archive: bigger blocks (the same for every process given one layout).
            self.block_size = min(self.block_size * 2, MAX_BLOCK_SIZE)
        self._buffers = _Buffers(self.block_size, self._parallel)
        blocks = self._blocks(layout)
        if blocks > MAX_BLOCKS:
            raise UsageError(f"archive {self.name} would need {blocks} blocks, more than Azure's {MAX_BLOCKS}; "
                             "export fewer artifacts per archive")
        if not resume:
            return
        with translate_azure_errors(f"archive {self.name}"):
            try:
                listed = self.client.get_block_list("uncommitted")
                self._staged = {block.id for block in listed[1]}
            except ResourceNotFoundError:
                self._staged = set()
        for identifier in self._staged:
            if len(identifier) == 64 and identifier.startswith("m"):
                self._markers.setdefault(identifier[1:32], []).append(identifier[32:])
        self.blocks_found = len(self._staged)

    def _blocks(self, layout: fmt.ArchivePlan) -> int:
        return sum(-(-(fmt.BLOCK + fmt.padded(e.size)) // self.block_size) for e in layout.entries) + 1

    def holds(self, entry: fmt.Entry) -> bool:
        pieces = -(-(fmt.BLOCK + fmt.padded(entry.size)) // self.block_size)
        for nonce in self._markers.get(_entry_key(entry, self.block_size), []):
            ids = ([marker_id(nonce, entry, self.block_size)] if pieces == 1  # its block is its marker
                   else [verified_block_id(nonce, entry, self.block_size, i) for i in range(pieces)])
            if all(i in self._staged for i in ids):
                with self._lock:
                    self._pieces[entry.name] = ids
                    self.blocks_skipped += len(ids)
                return True
        return False

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes], *, verified: bool = False) -> int:
        """Stage header, data and padding of ``entry`` as blocks of up to ``block_size`` bytes; a
        verified entry's blocks get nonce IDs, and its marker once every block is staged (a one-block
        entry's block is named as its marker: it is staged only whole, after the last chunk)."""
        received = 0

        def stream() -> Iterator[bytes]:
            nonlocal received
            yield fmt.tar_header(entry.name, entry.size)
            for chunk in chunks:
                received += len(chunk)
                if received > entry.size:
                    raise FerryError(f"{entry.name}: more than the {entry.size} bytes planned")
                yield chunk
            if received == entry.size:
                yield fmt.padding(entry.size)

        total = fmt.BLOCK + fmt.padded(entry.size)
        single = verified and total <= self.block_size  # staged once whole and verified: its own marker
        namer = (lambda _: marker_id(self._nonce, entry, self.block_size)) if single else (
            partial(verified_block_id, self._nonce, entry, self.block_size) if verified else None)
        ids = self._stage_all(self._buffers.fill(stream(), total), namer)
        if received == entry.size:
            if verified and not single:
                self._stage(b"\0", marker_id(self._nonce, entry, self.block_size))
            with self._lock:
                self._pieces[entry.name] = ids
        return received

    def _stage_all(self, pieces: Iterator[tuple[bytearray, int]], namer: Callable[[int], str] | None = None
                   ) -> list[str]:
        """Stage ``pieces`` (pooled buffers, filled) in order of IDs, several at once: one large
        layer is not staged one block at a time. Each buffer goes back to the pool once staged: the
        pool caps the bytes held across all entries, and reusing it spares a new 8 MiB each block."""
        futures: list[Future[str]] = []
        try:
            for index, (buffer, length) in enumerate(pieces):
                try:
                    future = self._pool.submit(self._stage, memoryview(buffer)[:length],
                                               namer(index) if namer else None)
                except BaseException:
                    self._buffers.give(buffer)
                    raise
                future.add_done_callback(lambda _f, b=buffer: self._buffers.give(b))  # type: ignore[misc]
                futures.append(future)
        except BaseException:
            wait(futures)  # let staged pieces finish before the error propagates
            raise
        return [f.result() for f in futures]

    def seal(self, written: set[str]) -> None:
        if self._layout is None:
            raise FerryError(f"archive {self.name}: sealed before it was begun")
        order: list[str] = []
        for entry in self._layout.entries:
            if entry.name in written:
                if entry.name not in self._pieces:
                    raise FerryError(f"archive {self.name}: {entry.name} was marked written but never staged")
                order.extend(self._pieces[entry.name])
        order.append(self._stage(fmt.END_OF_ARCHIVE))
        self._order = order

    def publish(self, metadata: dict[str, str], *, overwrite: bool) -> None:
        from azure.core import MatchConditions
        from azure.storage.blob import BlobBlock, ContentSettings

        from ferry.azure.errors import translate_azure_errors

        # Without overwrite the commit itself refuses an existing blob (If-None-Match: *), so two
        # exports racing to one name cannot both win.
        blocks = [BlobBlock(block_id=i) for i in self._order]
        settings = ContentSettings(content_type="application/x-tar")
        with translate_azure_errors(f"archive {self.name}"):
            if overwrite:
                self.client.commit_block_list(blocks, metadata=metadata, content_settings=settings)
            else:
                self.client.commit_block_list(blocks, metadata=metadata, content_settings=settings,
                                              match_condition=MatchConditions.IfMissing)
        self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Uncommitted blocks expire on their own (Azure drops them after a week); they also make a
        re-run faster, so nothing is deleted."""
        self._pool.shutdown(wait=True)

    def export_state(self) -> dict[str, Any]:
        with self._lock:
            return {"pieces": {name: list(ids) for name, ids in self._pieces.items()}}

    def import_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._pieces.update(state["pieces"])

    def _stage(self, data: bytes | memoryview, identifier: str | None = None) -> str:
        from ferry.azure.errors import translate_azure_errors

        identifier = identifier or block_id(data)
        with self._lock:
            if identifier in self._staged:
                self.blocks_skipped += 1
                return identifier
        with translate_azure_errors(f"archive {self.name}"):
            # A buffer, not bytes: urllib3 sends it as it is (azure-core and requests pass it on).
            self.client.stage_block(identifier, data, length=len(data))  # type: ignore[arg-type]
        with self._lock:
            self._staged.add(identifier)
            self.blocks_staged += 1
        return identifier


class _Buffers:
    """At most ``count`` reusable buffers of ``size`` bytes, made when first needed."""

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self._free: queue.LifoQueue[bytearray] = queue.LifoQueue()
        self._left = count
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            if self._free.empty() and self._left > 0:
                self._left -= 1
                return bytearray(self.size)
        return self._free.get()

    def give(self, buffer: bytearray) -> None:
        if len(buffer) == self.size:  # a small entry's own buffer is not pooled
            self._free.put(buffer)

    def fill(self, stream: Iterator[bytes], total: int | None = None) -> Iterator[tuple[bytearray, int]]:
        """Copy ``stream`` into buffers taken in turn: (buffer, bytes in it), full but for the last.
        The consumer owns each buffer yielded (and gives it back); one not yielded is given back.
        A stream of ``total`` bytes under one buffer gets a buffer of its own size: a small entry
        neither fills (zeroes) a whole block's buffer nor holds one of the pool's."""
        small = total is not None and 0 < total < self.size
        buffer, held = (bytearray(total) if small and total else self.take()), 0
        try:
            for chunk in stream:
                data = memoryview(chunk)
                while data:
                    take = min(self.size - held, len(data))
                    buffer[held:held + take] = data[:take]
                    held, data = held + take, data[take:]
                    if held == self.size:
                        full, buffer, held = buffer, bytearray(), 0
                        yield full, self.size
                        buffer = self.take()
            if held:
                full, buffer = buffer, bytearray()
                yield full, held
        finally:
            if len(buffer):
                self.give(buffer)
