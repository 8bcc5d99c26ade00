"""The transfer archive on a local file: an OCI layout tar, metadata first, readable by skopeo's
``oci-archive:FILE:repo:tag``. The layout of the tar is computed by :mod:`ferry.archive.format`."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ferry.archive import format as fmt
from ferry.errors import FerryError, IntegrityError, NotFoundError, UsageError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor, new_hasher, verify_bytes, verify_stream
from ferry.oci.layout import INDEX_FILE, LAYOUT_BYTES, LAYOUT_FILE, LayoutIndex, blob_path
from ferry.oci.manifest import build_index
from ferry.transports.base import BlobOpener, WritePlan
from ferry.transports.layout import CHUNK, IndexedLayoutReader
from ferry.transports.registry import fallback_tag


class ArchiveFileDestination:
    """Writes a Ferry archive to ``path`` through a temporary file in the same directory.

    :meth:`prepare` lays out every entry; blobs and manifests are then written in parallel at their
    offsets with ``os.pwrite``, verified while streaming. :meth:`commit` writes the headers, the
    final ``index.json`` into its reserved space and the end blocks, fsyncs, and renames the file
    onto ``path`` (unless ``hold=True``: then :meth:`publish` does the rename, so a caller can
    decide after seeing the results). Without ``overwrite`` an existing ``path`` is an error
    naming it (ACR's OverwriteBlobs). Closing without publishing removes the temporary file.
    Blobs are global in an archive: repositories do not matter to ``has_blob``.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False, hold: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.hold = hold
        self._check_target()
        self.index = LayoutIndex()
        self.temporary = self.path.with_name(f"{self.path.name}.partial-{uuid.uuid4().hex}")
        self._fd: int | None = None
        self._plan: fmt.ArchivePlan | None = None
        self._entries: dict[str, fmt.Entry] = {}
        self._written: set[str] = set()
        self._fallbacks: dict[tuple[str, str], tuple[Descriptor, frozenset[str]]] = {}
        self._referrers: dict[tuple[str, str], set[str]] = {}
        self._index_reserved = 0
        self._lock = threading.Lock()
        self.sealed = False
        self.published = False

    @property
    def name(self) -> str:
        return f"archive:{self.path}"

    def _check_target(self) -> None:
        if self.path.exists() and not self.overwrite:
            raise UsageError(f"archive {self.path} already exists; use --overwrite (OverwriteBlobs) to replace it")

    # -- planning -------------------------------------------------------------------------------
    def prepare(self, plan: WritePlan) -> None:
        """Lay out the archive: manifests, referrer fallback indexes and blobs, each once."""
        contents: dict[str, int] = {}
        for descriptor, raw in plan.manifests:
            contents.setdefault(descriptor.digest, len(raw))
        fallback_raw: dict[str, bytes] = {}
        grouped: dict[tuple[str, str], list[Descriptor]] = {}
        for repository, subject, referrer in plan.referrers:
            listed = grouped.setdefault((repository, subject.digest), [])
            if all(d.digest != referrer.digest for d in listed):
                listed.append(referrer)
        full_index = LayoutIndex()
        for (repository, subject_digest), referrers in grouped.items():
            raw = build_index(referrers)
            descriptor = Descriptor.for_bytes(mt.OCI_INDEX, raw)
            self._fallbacks[(repository, subject_digest)] = (descriptor, frozenset(d.digest for d in referrers))
            fallback_raw[descriptor.digest] = raw
            contents.setdefault(descriptor.digest, len(raw))
            full_index.set(repository, fallback_tag(subject_digest), descriptor)
        for blob in plan.blobs:
            contents.setdefault(blob.digest, blob.size)
        for artifact in plan.artifacts:
            for tag in artifact.tags:
                full_index.set(artifact.repository, tag, artifact.root)
        self._index_reserved = fmt.reserved_index_size(len(full_index.to_bytes()))
        self._plan = fmt.plan_archive(len(LAYOUT_BYTES), self._index_reserved,
                                      [(blob_path(d), size) for d, size in contents.items()])
        self._entries = self._plan.by_name()
        self.temporary.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.ftruncate(self._fd, self._plan.total_size)
        self._pwrite(LAYOUT_BYTES, self._entries[LAYOUT_FILE].data_offset)
        for digest, raw in fallback_raw.items():
            self._put_bytes(digest, raw)

    def _entry(self, digest: str) -> fmt.Entry:
        if self._plan is None:
            raise FerryError(f"{self.name}: content written before prepare()")
        entry = self._entries.get(blob_path(digest))
        if entry is None:
            raise FerryError(f"{self.name}: {digest} was not in the write plan")
        return entry

    def _pwrite(self, data: bytes, offset: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _put_bytes(self, digest: str, raw: bytes) -> None:
        entry = self._entry(digest)
        if len(raw) != entry.size:
            raise IntegrityError(f"{digest}: {len(raw)} bytes, but {entry.size} were planned")
        self._pwrite(raw, entry.data_offset)
        with self._lock:
            self._written.add(digest)

    # -- the Destination protocol ---------------------------------------------------------------
    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        with self._lock:
            return descriptor.digest in self._written

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        entry = self._entry(descriptor.digest)
        if entry.size != descriptor.size:
            raise IntegrityError(f"blob {descriptor.digest}: descriptor says {descriptor.size} bytes, "
                                 f"the plan {entry.size}")
        hasher = new_hasher(descriptor.digest)
        written = 0
        with opener() as stream:
            for chunk in stream:
                if written + len(chunk) > entry.size:
                    raise IntegrityError(f"blob {descriptor.digest}: more than the {entry.size} bytes described")
                self._pwrite(chunk, entry.data_offset + written)
                hasher.update(chunk)
                written += len(chunk)
        actual = f"{descriptor.digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        if actual != descriptor.digest or written != descriptor.size:
            raise IntegrityError(f"blob {descriptor.digest}: received {written} bytes hashing to {actual}")
        with self._lock:
            self._written.add(descriptor.digest)
        return written

    def put_manifest(self, repository: str, descriptor: Descriptor, raw: bytes) -> None:
        verify_bytes(raw, descriptor.digest, what=f"manifest {descriptor.digest}")
        self._put_bytes(descriptor.digest, raw)

    def get_tag(self, repository: str, tag: str) -> Descriptor | None:
        return self.index.find(repository, tag)

    def set_tag(self, repository: str, tag: str, descriptor: Descriptor, raw: bytes) -> None:
        self.index.set(repository, tag, descriptor)

    def add_referrer(self, repository: str, subject: Descriptor, referrer: Descriptor) -> None:
        with self._lock:
            self._referrers.setdefault((repository, subject.digest), set()).add(referrer.digest)

    def commit(self) -> None:
        """Seal the archive (headers, final index, end blocks, fsync), then publish unless held."""
        if self._fd is None or self._plan is None:  # nothing was planned: every artifact failed
            self._open_empty()
        assert self._plan is not None
        for (repository, subject_digest), (descriptor, members) in self._fallbacks.items():
            if self._referrers.get((repository, subject_digest), set()) >= members:
                self.index.set(repository, fallback_tag(subject_digest), descriptor)
        index_entry = self._entries[INDEX_FILE]
        self._pwrite(fmt.fit_index(self.index.to_bytes(), index_entry.size), index_entry.data_offset)
        unused = 0
        for entry in self._plan.entries:
            name = entry.name
            if name.startswith("blobs/") and name.split("/", 1)[1].replace("/", ":", 1) not in self._written:
                name = f"{fmt.UNUSED_DIR}{unused}"
                unused += 1
            self._pwrite(fmt.tar_header(name, entry.size), entry.header_offset)
        self._pwrite(fmt.END_OF_ARCHIVE, self._plan.total_size - len(fmt.END_OF_ARCHIVE))
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self.sealed = True
        if not self.hold:
            self.publish()

    def _open_empty(self) -> None:
        self.prepare(WritePlan(artifacts=(), blobs=(), manifests=()))

    def publish(self) -> None:
        """Rename the sealed archive onto its final path (atomic on one file system)."""
        if not self.sealed:
            raise FerryError(f"{self.name}: publish() before commit()")
        self._check_target()
        os.replace(self.temporary, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.published = True

    def close(self) -> None:
        """Drop the temporary file unless the archive was published."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self.published:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> ArchiveFileDestination:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ArchiveFileSource(IndexedLayoutReader):
    """Reads an OCI layout tar by random access: Ferry's archives, or any uncompressed OCI layout
    tar (skopeo's ``oci-archive`` puts ``index.json`` last; the header walk finds it anywhere).

    Opening walks the tar headers only (see :func:`ferry.archive.format.scan_members` for what is
    rejected). Every entry's size is checked against the descriptor that asks for it, and bytes
    are verified while streaming.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("rb")
        except FileNotFoundError as exc:
            raise UsageError(f"archive {self.path} does not exist") from exc
        except IsADirectoryError as exc:
            raise UsageError(f"archive {self.path} is a directory (for an OCI layout use oci:DIR)") from exc
        try:
            total = os.fstat(self._file.fileno()).st_size
            fmt.check_uncompressed(self._file.read(8), str(self.path))
            self._file.seek(0)
            self.members = fmt.scan_members(self._file, total, str(self.path))
            self.index = LayoutIndex.parse(self._read_member(self.members[INDEX_FILE]))
            self._check_index_sizes()
        except BaseException:
            self._file.close()
            raise
        self._fd = self._file.fileno()

    @property
    def name(self) -> str:
        return f"archive:{self.path}"

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ArchiveFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_index_sizes(self) -> None:
        for entry in self.index.entries:
            member = self.members.get(blob_path(entry.digest))
            if member is not None:
                self._check_size(member, entry)

    def _check_size(self, member: fmt.Member, descriptor: Descriptor) -> None:
        if member.size != descriptor.size:
            raise IntegrityError(f"{self.name}: entry {member.name} holds {member.size} bytes but its "
                                 f"descriptor says {descriptor.size}")

    def _member(self, descriptor_digest: str, what: str) -> fmt.Member:
        member = self.members.get(blob_path(descriptor_digest))
        if member is None:
            raise NotFoundError(f"{what} {descriptor_digest} is missing from {self.name}")
        return member

    def _read_member(self, member: fmt.Member) -> bytes:
        data = os.pread(self._file.fileno(), member.size, member.offset)
        if len(data) != member.size:
            raise IntegrityError(f"{self.name} is truncated inside entry {member.name}")
        return data

    def _read(self, digest: str) -> bytes:
        return self._read_member(self._member(digest, "manifest"))

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        self._check_size(self._member(descriptor.digest, "manifest"), descriptor)
        return super().fetch_manifest(repository, descriptor)

    @contextmanager
    def open_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        member = self._member(descriptor.digest, "blob")
        self._check_size(member, descriptor)
        yield verify_stream(self._chunks(member), descriptor, what=f"blob {descriptor.digest} in {self.name}")

    def _chunks(self, member: fmt.Member) -> Iterator[bytes]:
        position, end = member.offset, member.offset + member.size
        while position < end:
            chunk = os.pread(self._fd, min(CHUNK, end - position), position)
            if not chunk:
                return  # verify_stream reports the truncation
            position += len(chunk)
            yield chunk
