"""OCI image layout directory transport (``oci:DIR``), readable by skopeo's ``oci:DIR:REF``."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ferry.errors import IntegrityError, NotFoundError, UsageError
from ferry.files import replace_file
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor, verify_bytes, verify_stream
from ferry.oci.layout import INDEX_FILE, LAYOUT_BYTES, LAYOUT_FILE, LayoutIndex, blob_path
from ferry.oci.manifest import build_index, detect_media_type, parse_manifest
from ferry.oci.referrers import fallback_tag, is_fallback_tag
from ferry.reference import is_valid_digest
from ferry.transports.base import BlobOpener

CHUNK = 1024 * 1024


class IndexedLayoutReader:
    """What every reader of an OCI layout shares, wherever its files live (a directory, a tar).

    Subclasses set ``index`` (the parsed ``index.json``) and implement ``name`` and
    :meth:`_read` (a blob's whole bytes by digest, NotFoundError when absent).
    """

    index: LayoutIndex

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _read(self, digest: str) -> bytes:
        raise NotImplementedError

    def resolve(self, repository: str, reference: str) -> Descriptor:
        if is_valid_digest(reference):
            entry = self.index.find_digest(reference)
            if entry is not None:
                return entry
            raw = self._read(reference)
            return Descriptor.for_bytes(detect_media_type(raw), raw)
        entry = self.index.find(repository, reference)
        if entry is None:
            raise NotFoundError(f"{repository}:{reference} is not in {self.name} "
                                f"(it holds: {', '.join(self.index.names()) or 'nothing'})")
        return entry

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        raw = self._read(descriptor.digest)
        verify_bytes(raw, descriptor.digest, what=f"manifest {descriptor.digest} in {self.name}")
        return raw

    def referrers(self, repository: str, subject: Descriptor) -> list[Descriptor]:
        entry = self.index.find(repository, fallback_tag(subject.digest))
        if entry is None:
            return []
        return list(parse_manifest(self.fetch_manifest(repository, entry), entry.media_type).manifests)

    def list_tags(self, repository: str) -> list[str]:
        return [t for t in self.index.tags(repository) if not is_fallback_tag(t)]


class LayoutSource(IndexedLayoutReader):
    """Reads an OCI layout directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise UsageError(f"{self.root} is not an OCI layout: {INDEX_FILE} is missing")
        self.index = LayoutIndex.parse(index_path.read_bytes())

    @property
    def name(self) -> str:
        return f"oci:{self.root}"

    @contextmanager
    def open_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        path = self.root / blob_path(descriptor.digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {descriptor.digest} is missing from {self.name}") from exc
        with handle:
            yield verify_stream(iter(lambda: handle.read(CHUNK), b""), descriptor,
                                what=f"blob {descriptor.digest} in {self.name}")

    def _read(self, digest: str) -> bytes:
        try:
            return (self.root / blob_path(digest)).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"manifest {digest} is missing from {self.name}") from exc


class LayoutDestination:
    """Writes an OCI layout directory. Blobs land under temporary names and are renamed once
    verified; ``index.json`` is rewritten atomically at :meth:`commit`, so a reader never sees a
    reference to incomplete content."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create OCI layout oci:{self.root}: {exc.strerror or exc}") from exc
        index_path = self.root / INDEX_FILE
        self.index = LayoutIndex.parse(index_path.read_bytes()) if index_path.is_file() else LayoutIndex()
        self._referrers: dict[tuple[str, str], list[Descriptor]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"oci:{self.root}"

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        path = self.root / blob_path(descriptor.digest)
        return path.is_file() and path.stat().st_size == descriptor.size

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        """Write the blob under a temporary name, renamed once complete. Its bytes are verified once,
        by the source's stream (which raises before its last chunk on any mismatch); the size is
        checked again here."""
        final = self.root / blob_path(descriptor.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.partial")
        written = 0
        try:
            with opener() as stream, temporary.open("wb") as handle:
                for chunk in stream:
                    handle.write(chunk)
                    written += len(chunk)
            if written != descriptor.size:
                raise IntegrityError(f"blob {descriptor.digest}: received {written} of {descriptor.size} bytes")
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        return written

    def put_manifest(self, repository: str, descriptor: Descriptor, raw: bytes) -> None:
        verify_bytes(raw, descriptor.digest, what=f"manifest {descriptor.digest}")
        self._write_file(blob_path(descriptor.digest), raw)

    def get_tag(self, repository: str, tag: str) -> Descriptor | None:
        return self.index.find(repository, tag)

    def set_tag(self, repository: str, tag: str, descriptor: Descriptor, raw: bytes) -> None:
        self.index.set(repository, tag, descriptor)

    def add_referrer(self, repository: str, subject: Descriptor, referrer: Descriptor) -> None:
        with self._lock:
            listed = self._referrers.setdefault((repository, subject.digest), [])
            if all(d.digest != referrer.digest for d in listed):
                listed.append(referrer)

    def commit(self) -> None:
        for (repository, subject_digest), referrers in self._referrers.items():
            tag = fallback_tag(subject_digest)
            existing = self.index.find(repository, tag)
            entries = list(parse_manifest((self.root / blob_path(existing.digest)).read_bytes()).manifests) \
                if existing else []
            known = {e.digest for e in entries}
            entries += [r for r in referrers if r.digest not in known]
            raw = build_index(entries)
            descriptor = Descriptor.for_bytes(mt.OCI_INDEX, raw)
            self._write_file(blob_path(descriptor.digest), raw)
            self.index.set(repository, tag, descriptor)
        self._write_file(LAYOUT_FILE, LAYOUT_BYTES)
        self._write_file(INDEX_FILE, self.index.to_bytes())

    def _write_file(self, relative: str, data: bytes) -> None:
        replace_file(self.root / relative, data)
