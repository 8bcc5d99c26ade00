"""The Ferry archive's tar layout, as pure functions: every entry's offset is known before a byte moves.

A Ferry archive is an OCI image layout packed as a plain ustar tar, with no outer compression::

    oci-layout | index.json (fixed reserved size) | blobs/sha256/<hex> ... | two zero blocks

Each entry is a 512-byte header followed by its data padded to 512 bytes. Because the write plan
gives every size in advance, :func:`plan_archive` computes each entry's header and data offsets up
front, so blobs can be written in parallel at their offsets (``pwrite`` for a file, staged blocks
for an Azure block blob) and read back by byte range. ``index.json`` gets a fixed *reserved* size
at plan time; the final index (minus artifacts that failed) is padded with trailing spaces, which
keeps it valid JSON, into that same space at commit.

Entries reserved for content that was never written (a failed artifact's blobs) are renamed at
commit to ``blobs/.ferry-unused/<n>``; readers ignore that directory.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import IO

from ferry.errors import FerryError, IntegrityError, UnsupportedError
from ferry.oci.layout import INDEX_FILE, LAYOUT_FILE
from ferry.reference import is_valid_digest

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
UNUSED_DIR = "blobs/.ferry-unused/"
#: ustar keeps names of up to 100 bytes without a prefix field; ``blobs/sha256/<64 hex>`` is 77.
MAX_NAME = 100


def padded(size: int) -> int:
    """``size`` rounded up to a whole number of 512-byte blocks."""
    return -(-size // BLOCK) * BLOCK


def padding(size: int) -> bytes:
    """The zero bytes that follow ``size`` bytes of data to fill the last block."""
    return b"\0" * (padded(size) - size)


def reserved_index_size(index_length: int) -> int:
    """Room for ``index.json``: the planned index plus slack, in whole blocks."""
    return padded(index_length + max(1024, index_length // 8))


def fit_index(raw: bytes, reserved: int) -> bytes:
    """``raw`` JSON padded with trailing spaces to exactly ``reserved`` bytes."""
    if len(raw) > reserved:
        raise FerryError(f"index.json needs {len(raw)} bytes but only {reserved} were reserved")
    return raw + b" " * (reserved - len(raw))


def tar_header(name: str, size: int) -> bytes:
    """A plain ustar header for a regular file (mode 0644, mtime 0, owner 0:0)."""
    if len(name.encode()) > MAX_NAME:
        raise FerryError(f"tar entry name {name!r} is longer than ustar's {MAX_NAME} bytes")
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT)


@dataclass(frozen=True)
class Entry:
    """One tar entry: its name, data size and where its header and data start."""

    name: str
    size: int
    header_offset: int

    @property
    def data_offset(self) -> int:
        return self.header_offset + BLOCK

    @property
    def end(self) -> int:
        """The offset just past this entry's padded data."""
        return self.data_offset + padded(self.size)


@dataclass(frozen=True)
class ArchivePlan:
    """Where everything goes: entries in file order, and the total size with the end blocks."""

    entries: tuple[Entry, ...]
    total_size: int

    def entry(self, name: str) -> Entry:
        for candidate in self.entries:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}


def plan_archive(layout_size: int, index_reserved: int, blobs: list[tuple[str, int]]) -> ArchivePlan:
    """Lay out ``oci-layout``, ``index.json`` and then ``blobs`` (``(path, size)``, unique) in order."""
    entries: list[Entry] = []
    offset = 0
    seen: set[str] = set()
    for name, size in [(LAYOUT_FILE, layout_size), (INDEX_FILE, index_reserved), *blobs]:
        if name in seen:
            raise FerryError(f"tar entry {name} is planned twice")
        if len(name.encode()) > MAX_NAME:
            raise FerryError(f"tar entry name {name!r} is longer than ustar's {MAX_NAME} bytes")
        seen.add(name)
        entry = Entry(name, size, offset)
        entries.append(entry)
        offset = entry.end
    return ArchivePlan(tuple(entries), offset + len(END_OF_ARCHIVE))


# -- reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """A regular file found in an archive: where its data starts and how long it is."""

    name: str
    offset: int
    size: int


_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def check_uncompressed(head: bytes, where: str) -> None:
    """Raise :class:`UnsupportedError` if ``head`` (the first bytes) starts a compressed stream."""
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedError(f"{where} is {kind}-compressed; Ferry reads uncompressed OCI archive "
                                   f"tars only (decompress it first, e.g. with gunzip)")


def scan_members(fileobj: IO[bytes], total_size: int, where: str) -> dict[str, Member]:
    """Walk the tar headers of a seekable ``fileobj`` (data is skipped, not read) and check safety.

    Accepted: directories, and regular files named ``oci-layout``, ``index.json`` or
    ``blobs/<algorithm>/<hex>``; ``blobs/.ferry-unused/*`` is skipped. Rejected with
    :class:`IntegrityError`: absolute paths or ``..``, links, devices and FIFOs, any other name
    (an unknown file is refused rather than ignored, so nothing unexpected is trusted), entries
    named twice, and entries whose data runs past the end of the file (truncation).
    """
    members: dict[str, Member] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as archive:
            for info in archive:
                name = info.name
                while name.startswith("./"):
                    name = name[2:]
                parts = name.split("/")
                if name.startswith("/") or ".." in parts or "\\" in name:
                    raise IntegrityError(f"{where}: unsafe path {info.name!r} in archive")
                if info.isdir():
                    continue
                if not info.isreg():
                    raise IntegrityError(f"{where}: entry {info.name!r} is a link or special file, "
                                         "which an OCI archive never needs")
                if name.startswith(UNUSED_DIR):
                    continue
                if name not in (LAYOUT_FILE, INDEX_FILE) and not _is_blob_name(parts):
                    raise IntegrityError(f"{where}: unexpected entry {info.name!r} (only oci-layout, "
                                         "index.json and blobs/<algorithm>/<hex> are allowed)")
                if name in members:
                    raise IntegrityError(f"{where}: entry {name!r} appears twice")
                if info.offset_data + info.size > total_size:
                    raise IntegrityError(f"{where} is truncated: entry {name!r} needs "
                                         f"{info.offset_data + info.size} bytes, the file has {total_size}")
                members[name] = Member(name, info.offset_data, info.size)
    except tarfile.TarError as exc:
        raise IntegrityError(f"{where} is not a readable tar archive (truncated or corrupt): {exc}") from exc
    if INDEX_FILE not in members:
        raise IntegrityError(f"{where}: missing index.json, this is not an OCI layout archive")
    return members


def _is_blob_name(parts: list[str]) -> bool:
    return len(parts) == 3 and parts[0] == "blobs" and is_valid_digest(f"{parts[1]}:{parts[2]}")
