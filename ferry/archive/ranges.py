"""Random access to an archive's bytes, on a local file or an Azure blob.

:class:`RangeReader` is what the archive reader needs: the size, and byte ranges read at will
(in parallel, from several threads). :class:`RangeFile` adapts one to a seekable file object with
read-ahead, so :mod:`tarfile` can walk the headers of a remote archive with few requests.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ferry.errors import IntegrityError, UsageError

if TYPE_CHECKING:
    from azure.core import MatchConditions
    from azure.storage.blob import BlobClient

CHUNK = 1024 * 1024


class RangeReader(Protocol):
    """Thread-safe random reads. ``stream`` yields ``length`` bytes from ``offset`` in chunks."""

    name: str
    size: int
    #: Identifies the version being read (a blob's ETag; a file's inode, mtime and size).
    version: str

    def read(self, offset: int, length: int) -> bytes: ...

    def stream(self, offset: int, length: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class FileRangeReader:
    """Ranges of a local file through ``os.pread`` (no shared file position, so thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise UsageError(f"archive {self.path} does not exist") from exc
        except IsADirectoryError as exc:
            raise UsageError(f"archive {self.path} is a directory (for an OCI layout use oci:DIR)") from exc
        if os.path.isdir(self.path):
            os.close(self._fd)
            raise UsageError(f"archive {self.path} is a directory (for an OCI layout use oci:DIR)")
        stat = os.fstat(self._fd)
        self.size = stat.st_size
        #: What identifies the version read: a rewrite (new inode or mtime) is another version.
        self.version = f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise IntegrityError(f"{self.name} is truncated: wanted {length} bytes at {offset}")
        return data

    def stream(self, offset: int, length: int) -> Iterator[bytes]:
        position, end = offset, offset + length
        while position < end:
            chunk = os.pread(self._fd, min(CHUNK, end - position), position)
            if not chunk:
                return  # the consumer's verification reports the truncation
            position += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BlobRangeReader:
    """Ranges of an Azure blob through ranged GETs (``download_blob(offset, length)``)."""

    def __init__(self, client: BlobClient, name: str) -> None:
        from ferry.azure.errors import translate_azure_errors

        self.client = client
        self.name = name
        with translate_azure_errors(f"archive {name}"):
            properties = client.get_blob_properties()
        self.size = int(properties.size)
        self.metadata: dict[str, str] = dict(properties.metadata or {})
        self.etag: str = str(properties.etag)
        #: Every read is conditional on this ETag, so what is read is this one version.
        self.version = self.etag

    def read(self, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        from ferry.azure.errors import translate_azure_errors

        with translate_azure_errors(f"archive {self.name}"):
            data = self.client.download_blob(offset=offset, length=length, etag=self.etag,
                                             match_condition=_if_match()).readall()
        if len(data) != length:
            raise IntegrityError(f"{self.name} is truncated: wanted {length} bytes at {offset}")
        return bytes(data)

    def stream(self, offset: int, length: int) -> Iterator[bytes]:
        if length == 0:
            return
        from ferry.azure.errors import translate_azure_errors

        with translate_azure_errors(f"archive {self.name}"):
            downloader = self.client.download_blob(offset=offset, length=length, etag=self.etag,
                                                   match_condition=_if_match(), max_concurrency=1)
            yield from downloader.chunks()

    def close(self) -> None:
        """Clients are pooled by :mod:`ferry.azure.blob`; nothing to release."""


def _if_match() -> MatchConditions:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over a :class:`RangeReader`, reading ahead ``window`` bytes."""

    def __init__(self, reader: RangeReader, window: int = CHUNK) -> None:
        super().__init__()
        self._reader = reader
        self._window = window
        self._position = 0
        self._buffer = b""
        self._buffer_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            self._position = self._reader.size + offset
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = len(buffer)
        if wanted == 0 or self._position >= self._reader.size:
            return 0
        start = self._position - self._buffer_start
        if not (0 <= start < len(self._buffer)):
            length = min(max(self._window, wanted), self._reader.size - self._position)
            self._buffer = self._reader.read(self._position, length)
            self._buffer_start, start = self._position, 0
        piece = self._buffer[start:start + wanted]
        buffer[:len(piece)] = piece
        self._position += len(piece)
        return len(piece)
