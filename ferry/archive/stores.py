"""Where an archive's bytes go while it is written: a local file or an Azure block blob.

The archive destination (:mod:`ferry.transports.archive`) lays the tar out and streams each
entry's data to a store; the store makes the result appear whole, at once, or not at all.

* :class:`FileStore` writes a temporary file beside the target with ``pwrite`` at each entry's
  precomputed offset, and renames it onto the target when published.
* :class:`BlockBlobStore` stages each entry (header, data and padding) as blocks whose IDs are the
  SHA-256 of their bytes, and commits the block list when published, with metadata. A re-run of an
  interrupted export finds the blocks already staged and does not send them again; content-derived
  IDs make that safe even if the earlier run was given other content.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ferry.archive import format as fmt
from ferry.errors import FerryError, UsageError
from ferry.streams import rechunk

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

#: Azure allows 50,000 blocks in a block blob.
MAX_BLOCKS = 50_000


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

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes]) -> int:
        """Store exactly ``entry.size`` bytes of data for ``entry``; returns the bytes received."""
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

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes]) -> int:
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
    the base64 encoding the SDK applies."""
    return hashlib.sha256(data).hexdigest()


class BlockBlobStore:
    """An Azure block blob: entries staged as content-addressed blocks, committed at publish."""

    def __init__(self, client: BlobClient, name: str, *, block_size: int = 8 * 1024 * 1024,
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
        self._pieces: dict[str, list[str]] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="ferry-stage")
        self._in_flight = threading.BoundedSemaphore(parallel)

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
        blocks = sum(-(-(fmt.BLOCK + fmt.padded(e.size)) // self.block_size) for e in layout.entries) + 1
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
        self.blocks_found = len(self._staged)

    def write_entry(self, entry: fmt.Entry, chunks: Iterable[bytes]) -> int:
        """Stage header, data and padding of ``entry`` as blocks of up to ``block_size`` bytes."""
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

        ids = self._stage_all(rechunk(stream(), self.block_size))
        if received == entry.size:
            with self._lock:
                self._pieces[entry.name] = ids
        return received

    def _stage_all(self, pieces: Iterator[bytes]) -> list[str]:
        """Stage ``pieces`` in order of IDs, several at once: one large layer is not staged one
        block at a time. ``_in_flight`` caps the pieces held in memory across all entries."""
        futures: list[Future[str]] = []
        try:
            for piece in pieces:
                self._in_flight.acquire()
                try:
                    future = self._pool.submit(self._stage, piece)
                except BaseException:
                    self._in_flight.release()
                    raise
                future.add_done_callback(lambda _f: self._in_flight.release())
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

    def _stage(self, data: bytes | memoryview) -> str:
        from ferry.azure.errors import translate_azure_errors

        identifier = block_id(data)
        with self._lock:
            if identifier in self._staged:
                self.blocks_skipped += 1
                return identifier
        with translate_azure_errors(f"archive {self.name}"):
            self.client.stage_block(identifier, bytes(data), length=len(data))
        with self._lock:
            self._staged.add(identifier)
            self.blocks_staged += 1
        return identifier
