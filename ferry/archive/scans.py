"""What opening an archive learns by walking its tar headers, kept per archive *version*.

Walking the headers of a remote archive costs a ranged GET per window of headers (869 GETs, 58 MB
for 3000 small artifacts), and a Durable import opens the archive in every activity. A scan is
therefore cached in the process, keyed by the archive's name *and* version (a blob's ETag, a file's
inode, mtime and size): a replaced blob has another ETag and is scanned again, and every later
read of the cached version is itself conditional on that ETag (:class:`~ferry.archive.ranges.BlobRangeReader`),
so a cached table never serves bytes of another version.

Imported by ``ferry/transports/archive.py``.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ferry.archive import format as fmt
from ferry.archive.ranges import RangeFile, RangeReader
from ferry.oci.layout import INDEX_FILE, LayoutIndex

#: Archives whose scans one process keeps (each a member table and a parsed index).
CACHED_SCANS = 8


@dataclass(frozen=True)
class Scan:
    """An archive version's members and its parsed ``index.json`` (read-only once cached)."""

    members: dict[str, fmt.Member]
    index: LayoutIndex


_scans: OrderedDict[tuple[str, str], Scan] = OrderedDict()
_lock = threading.Lock()
#: How many scans actually walked headers (not served from the cache), for tests and benchmarks.
walks = 0


def cached_scan(reader: RangeReader) -> Scan | None:
    """The scan of ``reader``'s archive at its current version, if this process has it."""
    with _lock:
        found = _scans.get((reader.name, reader.version))
        if found is not None:
            _scans.move_to_end((reader.name, reader.version))
        return found


def scan(reader: RangeReader) -> Scan:
    """Walk the headers (see :func:`ferry.archive.format.scan_members`) and parse ``index.json``;
    the caller checks the result before it is :func:`remember`-ed."""
    global walks
    fmt.check_uncompressed(reader.read(0, min(8, reader.size)), reader.name)
    # A small read-ahead: headers of big entries are far apart, and each window is a ranged GET.
    members = fmt.scan_members(io.BufferedReader(RangeFile(reader, window=64 * 1024)), reader.size, reader.name)
    member = members[INDEX_FILE]
    index = LayoutIndex.parse(reader.read(member.offset, member.size))
    with _lock:
        walks += 1
    return Scan(members, index)


def remember(reader: RangeReader, found: Scan) -> None:
    """Keep ``found`` (checked) as the scan of ``reader``'s archive at its version."""
    with _lock:
        _scans[(reader.name, reader.version)] = found
        _scans.move_to_end((reader.name, reader.version))
        while len(_scans) > CACHED_SCANS:
            _scans.popitem(last=False)


def forget() -> None:
    """Drop every cached scan."""
    with _lock:
        _scans.clear()
