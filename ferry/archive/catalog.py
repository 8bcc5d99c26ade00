"""What an archive says about itself: format version, artifact count and catalog digest.

The *catalog* is the list of names in ``index.json`` with what they point at, one
``repo:tag@digest`` line each, sorted. Its digest goes into the blob's metadata (with the format
version and the artifact count) when the archive is written, so the import side can check what
arrived against what was sent before trusting it, as ACR's ``catalogDigest`` does.
"""

from __future__ import annotations

import hashlib

from ferry.errors import IntegrityError, UnsupportedError
from ferry.oci.layout import REF_NAME, LayoutIndex
from ferry.oci.referrers import is_fallback_tag

FORMAT_VERSION = "1"
FORMAT_ANNOTATION = "io.ferry.archive.format"
#: Blob metadata keys (Azure metadata names must be identifiers; they arrive lower-cased).
META_FORMAT = "ferryformat"
META_ARTIFACTS = "ferryartifacts"
META_CATALOG = "ferrycatalogdigest"


def catalog_lines(index: LayoutIndex) -> list[str]:
    return sorted(f"{e.annotations[REF_NAME]}@{e.digest}" for e in index.entries if e.annotations.get(REF_NAME))


def catalog_digest(index: LayoutIndex) -> str:
    return "sha256:" + hashlib.sha256("\n".join(catalog_lines(index)).encode()).hexdigest()


def artifact_count(index: LayoutIndex) -> int:
    """Named entries that are artifacts (referrer fallback indexes, ``repo:sha256-…``, excluded)."""
    names = [e.annotations.get(REF_NAME, "") for e in index.entries]
    return sum(1 for n in names if n and not is_fallback_tag(n.rsplit(":", 1)[-1]))


def index_annotations(index: LayoutIndex) -> dict[str, str]:
    return {FORMAT_ANNOTATION: FORMAT_VERSION}


def archive_metadata(index: LayoutIndex) -> dict[str, str]:
    return {META_FORMAT: FORMAT_VERSION, META_ARTIFACTS: str(artifact_count(index)),
            META_CATALOG: catalog_digest(index)}


def is_ferry_archive(metadata: dict[str, str]) -> bool:
    return META_FORMAT in {k.lower() for k in metadata}


def check_metadata(metadata: dict[str, str], index: LayoutIndex, where: str) -> None:
    """Raise unless blob metadata written by Ferry agrees with the ``index.json`` that arrived.

    Metadata without Ferry's keys (an archive from another tool) is accepted as it is.
    """
    meta = {k.lower(): v for k, v in metadata.items()}
    if META_FORMAT not in meta:
        return
    if meta[META_FORMAT] != FORMAT_VERSION:
        raise UnsupportedError(f"{where}: archive format {meta[META_FORMAT]!r}; this Ferry reads {FORMAT_VERSION!r}")
    expected, actual = meta.get(META_CATALOG), catalog_digest(index)
    if expected and expected != actual:
        raise IntegrityError(f"{where}: catalog digest {actual} does not match the {expected} it was sent with")
    count = meta.get(META_ARTIFACTS)
    if count is not None and count != str(artifact_count(index)):
        raise IntegrityError(f"{where}: holds {artifact_count(index)} artifacts, its metadata says {count}")
