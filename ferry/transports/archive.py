"""The transfer archive: an OCI layout tar, metadata first, readable by skopeo's
``oci-archive:FILE:repo:tag``, on a local file or an Azure block blob.

The layout of the tar is computed by :mod:`ferry.archive.format`; the bytes go to a store
(:mod:`ferry.archive.stores`) and are read back by range (:mod:`ferry.archive.ranges`).
:func:`open_destination` and :func:`open_source` pick both from a path or a blob URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ferry.archive import format as fmt
from ferry.archive import scans
from ferry.archive.catalog import archive_metadata, catalog_digest, check_metadata, index_annotations
from ferry.archive.ranges import BlobRangeReader, FileRangeReader, RangeReader
from ferry.archive.stores import ArchiveStore, BlockBlobStore, FileStore
from ferry.errors import ConflictError, FerryError, IntegrityError, NotFoundError, UsageError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor, verify_bytes, verify_stream
from ferry.oci.layout import INDEX_FILE, LAYOUT_BYTES, LAYOUT_FILE, LayoutIndex, blob_path
from ferry.oci.manifest import build_index
from ferry.oci.referrers import fallback_tag
from ferry.transports.base import BlobOpener, WritePlan
from ferry.transports.layout import IndexedLayoutReader

if TYPE_CHECKING:
    from ferry.azure.blob import StorageAuth


def is_blob_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def open_destination(target: str, *, overwrite: bool = False, hold: bool = False,
                     baseline: frozenset[str] = frozenset(), connection_strings: Sequence[str] = (),
                     storage_auth: StorageAuth | None = None) -> ArchiveDestination:
    """An archive destination at a file path or an Azure blob URL (auth: explicit, else auto)."""
    store: ArchiveStore
    if is_blob_url(target):
        from ferry.azure.blob import BlobLocation, auto_auth, blob_client

        location = BlobLocation.parse(target)
        auth = storage_auth or auto_auth(location, connection_strings)
        store = BlockBlobStore(blob_client(location, auth), location.display)
    else:
        store = FileStore(target)
    return ArchiveDestination(store, overwrite=overwrite, hold=hold, baseline=baseline)


def open_source(target: str, *, connection_strings: Sequence[str] = (),
                storage_auth: StorageAuth | None = None) -> ArchiveSource:
    """An archive source at a file path or an Azure blob URL; Ferry metadata on a blob is checked."""
    if is_blob_url(target):
        from ferry.azure.blob import BlobLocation, auto_auth, blob_client

        location = BlobLocation.parse(target)
        auth = storage_auth or auto_auth(location, connection_strings)
        reader = BlobRangeReader(blob_client(location, auth), location.display)
        return ArchiveSource(reader, reader.metadata)
    return ArchiveSource(FileRangeReader(target))


class ArchiveDestination:
    """Writes a Ferry archive through an :class:`~ferry.archive.stores.ArchiveStore`.

    :meth:`prepare` lays out every entry; blobs and manifests are then written in parallel,
    verified while streaming. :meth:`commit` writes the final ``index.json`` and seals the store,
    then publishes it unless ``hold=True`` (then :meth:`publish` does, so a caller can decide after
    seeing the results). Without ``overwrite`` an existing target is an error naming it (ACR's
    OverwriteBlobs), checked before any work and again, atomically, when publishing. Closing
    without publishing drops what was written. Blobs are global in an archive: repositories do
    not matter to ``has_blob``. ``baseline`` digests are treated as present (an incremental export).
    """

    def __init__(self, store: ArchiveStore, *, overwrite: bool = False, hold: bool = False,
                 baseline: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.overwrite = overwrite
        self.hold = hold
        self.baseline = baseline
        self._check_target()
        self.index = LayoutIndex()
        self._plan: fmt.ArchivePlan | None = None
        self._entries: dict[str, fmt.Entry] = {}
        self._written: set[str] = set()
        self._fallbacks: dict[tuple[str, str], tuple[Descriptor, frozenset[str]]] = {}
        self._referrers: dict[tuple[str, str], set[str]] = {}
        self._untagged: list[tuple[str, Descriptor]] = []
        self._lock = threading.Lock()
        self.sealed = False
        self.published = False
        self.metadata: dict[str, str] = {}

    @property
    def name(self) -> str:
        return f"archive:{self.store.name}"

    def _check_target(self) -> None:
        if not self.overwrite and self.store.exists():
            raise UsageError(f"archive {self.store.name} already exists; use --overwrite (OverwriteBlobs) "
                             "to replace it")

    # -- planning -------------------------------------------------------------------------------
    def prepare(self, plan: WritePlan) -> None:
        """Lay out the archive: manifests, referrer fallback indexes and blobs, each once; then write
        what the layout itself holds (``oci-layout``, the fallback indexes)."""
        fallback_raw = self._lay_out(plan)
        assert self._plan is not None
        self.store.begin(self._plan)
        self._write(self._entries[LAYOUT_FILE], LAYOUT_BYTES)
        for digest, raw in fallback_raw.items():
            self._put_bytes(digest, raw)

    def layout(self) -> dict[str, Any]:
        """The layout :meth:`prepare` computed, as JSON, for :meth:`adopt_layout` in other processes."""
        if self._plan is None:
            raise FerryError(f"{self.name}: layout() before prepare()")
        return {"entries": [[e.name, e.size, e.header_offset] for e in self._plan.entries],
                "total": self._plan.total_size,
                "fallbacks": [[repository, subject, descriptor.to_json(), sorted(members)]
                              for (repository, subject), (descriptor, members) in self._fallbacks.items()],
                "untagged": [[repository, root.to_json()] for repository, root in self._untagged],
                # Whether the store held blocks of an earlier attempt; if not, nobody looks for them.
                "resume": bool(getattr(self.store, "blocks_found", 1))}

    @staticmethod
    def layout_slice(layout: dict[str, Any], digests: Iterable[str]) -> dict[str, Any]:
        """The part of ``layout`` a batch writing ``digests`` needs: their entries, nothing else."""
        wanted = {blob_path(d) for d in digests}
        return {"entries": [e for e in layout["entries"] if e[0] in wanted], "total": layout["total"],
                "fallbacks": [], "untagged": [], "resume": layout.get("resume", True)}

    def adopt_layout(self, layout: dict[str, Any]) -> None:
        """Take a layout computed once by :meth:`prepare` elsewhere (the plan step): whole, to finish
        the archive, or a :meth:`layout_slice`, to write one batch. Nothing is computed or written."""
        self._plan = fmt.ArchivePlan(tuple(fmt.Entry(n, size, at) for n, size, at in layout["entries"]),
                                     int(layout["total"]))
        self._entries = self._plan.by_name()
        self._fallbacks = {(r, s): (Descriptor.from_json(d), frozenset(m)) for r, s, d, m in layout["fallbacks"]}
        self._untagged = [(r, Descriptor.from_json(d)) for r, d in layout["untagged"]]
        self.store.begin(self._plan, resume=bool(layout.get("resume", True)))

    def _lay_out(self, plan: WritePlan) -> dict[str, bytes]:
        """Compute every entry's place; returns the bytes of the referrer fallback indexes."""
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
            if blob.digest not in self.baseline:
                contents.setdefault(blob.digest, blob.size)
        for artifact in plan.artifacts:
            for tag in artifact.tags:
                full_index.set(artifact.repository, tag, artifact.root)
            if not artifact.tags:  # untagged content is named repo@digest, a valid ref.name
                self._untagged.append((artifact.repository, artifact.root))
                full_index.set_name(f"{artifact.repository}@{artifact.root.digest}", artifact.root)
        full_index.annotations.update(index_annotations(full_index))
        reserved = fmt.reserved_index_size(len(full_index.to_bytes()))
        self._plan = fmt.plan_archive(len(LAYOUT_BYTES), reserved,
                                      [(blob_path(d), size) for d, size in contents.items()])
        self._entries = self._plan.by_name()
        return fallback_raw

    def _entry(self, digest: str) -> fmt.Entry:
        if self._plan is None:
            raise FerryError(f"{self.name}: content written before prepare()")
        entry = self._entries.get(blob_path(digest))
        if entry is None:
            raise FerryError(f"{self.name}: {digest} was not in the write plan")
        return entry

    def _write(self, entry: fmt.Entry, data: bytes) -> None:
        if len(data) != entry.size:
            raise IntegrityError(f"{entry.name}: {len(data)} bytes, but {entry.size} were planned")
        self.store.write_entry(entry, [data])
        with self._lock:
            self._written.add(entry.name)

    def _put_bytes(self, digest: str, raw: bytes) -> None:
        self._write(self._entry(digest), raw)

    # -- the Destination protocol ---------------------------------------------------------------
    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        """Whether the blob is in the archive: written by this run, in the baseline, or left whole and
        verified by an interrupted earlier run of this archive (then it is not read again)."""
        if descriptor.digest in self.baseline:
            return True
        name = blob_path(descriptor.digest)
        with self._lock:
            if name in self._written:
                return True
        entry = self._entries.get(name)
        if entry is None or entry.size != descriptor.size or not self.store.holds(entry):
            return False
        with self._lock:
            self._written.add(name)
        return True

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        """Store a blob's bytes as they stream. They are verified once, by the source's stream (a
        Source's stream raises before its last chunk unless bytes and size match the descriptor);
        the size is checked again here."""
        entry = self._entry(descriptor.digest)
        if entry.size != descriptor.size:
            raise IntegrityError(f"blob {descriptor.digest}: descriptor says {descriptor.size} bytes, "
                                 f"the plan {entry.size}")
        with opener() as stream:
            written = self.store.write_entry(entry, stream, verified=True)
        if written != entry.size:
            raise IntegrityError(f"blob {descriptor.digest}: truncated, got {written} of {entry.size} bytes")
        with self._lock:
            self._written.add(entry.name)
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
        """Seal the archive (final index, headers, end blocks), then publish unless held."""
        if self._plan is None:  # nothing was planned: every artifact failed
            self.prepare(WritePlan(artifacts=(), blobs=(), manifests=()))
        assert self._plan is not None
        for (repository, subject_digest), (descriptor, members) in self._fallbacks.items():
            if self._referrers.get((repository, subject_digest), set()) >= members:
                self.index.set(repository, fallback_tag(subject_digest), descriptor)
        with self._lock:
            for repository, root in self._untagged:
                if blob_path(root.digest) in self._written:
                    self.index.set_name(f"{repository}@{root.digest}", root)
        self.index.annotations.update(index_annotations(self.index))
        self.metadata = archive_metadata(self.index)
        index_entry = self._entries[INDEX_FILE]
        self._write(index_entry, fmt.fit_index(self.index.to_bytes(), index_entry.size))
        with self._lock:
            written = set(self._written)
        self.store.seal(written)
        self.sealed = True
        if not self.hold:
            self.publish()

    def export_state(self) -> dict[str, object]:
        """What this process wrote, for another process to finish the archive (Durable fan-out)."""
        with self._lock:
            written = sorted(self._written)
        return {"written": written, "store": self.store.export_state()}

    def import_state(self, state: dict[str, Any]) -> None:
        """Adopt what another process wrote (after :meth:`prepare` with the same plan)."""
        with self._lock:
            self._written.update(state["written"])
        self.store.import_state(state["store"])

    def publish(self) -> None:
        """Make the sealed archive visible at its target (atomic)."""
        if not self.sealed:
            raise FerryError(f"{self.name}: publish() before commit()")
        self.store.publish(self.metadata, overwrite=self.overwrite)
        self.published = True

    def close(self) -> None:
        """Drop what was written unless the archive was published."""
        if not self.published:
            self.store.abort()

    def __enter__(self) -> ArchiveDestination:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ArchiveSource(IndexedLayoutReader):
    """Reads an OCI layout tar by random access through a :class:`~ferry.archive.ranges.RangeReader`:
    Ferry's archives, or any uncompressed OCI layout tar (skopeo's ``oci-archive`` puts
    ``index.json`` last; the header walk finds it anywhere).

    Opening walks the tar headers only (see :func:`ferry.archive.format.scan_members` for what is
    rejected) and checks blob ``metadata`` written by Ferry against the index. Every entry's size
    is checked against the descriptor that asks for it, and bytes are verified while streaming.
    """

    def __init__(self, reader: RangeReader, metadata: dict[str, str] | None = None) -> None:
        self.reader = reader
        try:
            # This version (ETag) was scanned and checked already: its metadata cannot differ either.
            found = scans.cached_scan(reader)
            if found is None:
                found = scans.scan(reader)
                self.members, self.index = found.members, found.index
                self._check_index_sizes()
                check_metadata(metadata or {}, self.index, reader.name)
                scans.remember(reader, found)
            self.members, self.index = found.members, found.index
        except BaseException:
            reader.close()
            raise

    @property
    def name(self) -> str:
        return f"archive:{self.reader.name}"

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> ArchiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def catalog_digest(self) -> str:
        return catalog_digest(self.index)

    def has_entry(self, digest: str) -> bool:
        return blob_path(digest) in self.members

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
            hint = (" and from the target (an incremental archive needs its baseline imported first)"
                    if what == "blob" else "")
            raise NotFoundError(f"{what} {descriptor_digest} is missing from {self.name}{hint}")
        return member

    def _read_member(self, member: fmt.Member) -> bytes:
        return self.reader.read(member.offset, member.size)

    def _read(self, digest: str) -> bytes:
        return self._read_member(self._member(digest, "manifest"))

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        self._check_size(self._member(descriptor.digest, "manifest"), descriptor)
        return super().fetch_manifest(repository, descriptor)

    @contextmanager
    def open_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        member = self._member(descriptor.digest, "blob")
        self._check_size(member, descriptor)
        yield verify_stream(self.reader.stream(member.offset, member.size), descriptor,
                            what=f"blob {descriptor.digest} in {self.name}")


def delete_archive(target: str, auth: StorageAuth | None, version: str | None = None) -> None:
    """Delete the archive at a path or blob URL (DeleteSourceBlobOnSuccess); with ``version`` (the
    reader's), only that version: ConflictError if it was rewritten since it was read."""
    if is_blob_url(target):
        from ferry.azure.blob import BlobLocation, delete_blob

        delete_blob(BlobLocation.parse(target), auth, etag=version)
        return
    path = Path(target)
    if version is not None:
        stat = path.stat()
        if f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}" != version:
            raise ConflictError(f"archive {target} was rewritten after it was imported")
    path.unlink()
