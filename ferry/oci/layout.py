"""The OCI image layout's ``index.json``: which references a layout (or archive) holds.

Ferry names each reference ``repo:tag`` in ``org.opencontainers.image.ref.name``, as skopeo does
in ``oci-archive``. Layouts written by other tools may name plain tags; both are understood.
Referrers are recorded the tag-schema way: an index under ``repo:sha256-<hex>``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ferry.errors import IntegrityError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_BYTES = json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}).encode()


def ref_name(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def blob_path(digest: str) -> str:
    """The layout-relative path of a blob: ``blobs/<algorithm>/<hex>``."""
    algorithm, hex_digest = digest.split(":", 1)
    return f"blobs/{algorithm}/{hex_digest}"


class LayoutIndex:
    """The entries of an ``index.json``, addressable by ``repo:tag``; thread-safe."""

    def __init__(self, entries: list[Descriptor] | None = None, annotations: dict[str, str] | None = None) -> None:
        self._entries: list[Descriptor] = list(entries or [])
        self.annotations = dict(annotations or {})
        self._lock = threading.Lock()
        #: How many entries carry each name: naming, replacing and finding are O(1), not a scan
        #: of the list (an archive of thousands of artifacts is named one entry at a time).
        self._named: dict[str, list[Descriptor]] = {}
        self._by_digest: dict[str, Descriptor] = {}
        for entry in self._entries:
            self._named.setdefault(entry.annotations.get(REF_NAME, ""), []).append(entry)
            self._by_digest.setdefault(entry.digest, entry)

    @classmethod
    def parse(cls, raw: bytes) -> LayoutIndex:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"index.json is not valid JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("manifests", []), list):
            raise IntegrityError("index.json is not an OCI index")
        entries = [Descriptor.from_json(e, where=f"index.json entry {i}")
                   for i, e in enumerate(document.get("manifests", []))]
        annotations = document.get("annotations") if isinstance(document.get("annotations"), dict) else {}
        return cls(entries, annotations)

    @property
    def entries(self) -> list[Descriptor]:
        with self._lock:
            return list(self._entries)

    def find(self, repository: str, tag: str) -> Descriptor | None:
        """The entry named ``repository:tag``; a bare ``tag`` name matches too (foreign layouts)."""
        with self._lock:
            exact = self._named.get(ref_name(repository, tag))
            if exact:
                return exact[0]
            bare = self._named.get(tag) or []
        return bare[0] if len(bare) == 1 else None

    def find_digest(self, digest: str) -> Descriptor | None:
        with self._lock:
            return self._by_digest.get(digest)

    def tags(self, repository: str) -> list[str]:
        prefix = f"{repository}:"
        with self._lock:
            names = [e.annotations.get(REF_NAME, "") for e in self._entries]
        return [n[len(prefix):] for n in names if n.startswith(prefix)]

    def names(self) -> list[str]:
        with self._lock:
            return [e.annotations.get(REF_NAME, "") for e in self._entries if e.annotations.get(REF_NAME)]

    def set(self, repository: str, tag: str, descriptor: Descriptor) -> None:
        """Name ``descriptor`` ``repository:tag``, replacing any entry of that name."""
        self.set_name(ref_name(repository, tag), descriptor)

    def set_name(self, name: str, descriptor: Descriptor) -> None:
        """Name ``descriptor`` ``name`` (``repo:tag``, or ``repo@digest`` for untagged content)."""
        raw: dict[str, Any] = {k: v for k, v in descriptor.to_json().items() if k != "annotations"}
        raw["annotations"] = {**descriptor.annotations, REF_NAME: name}
        entry = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, raw)
        with self._lock:
            if self._named.get(name):  # a rename: the one case that rebuilds the list
                self._entries = [e for e in self._entries if e.annotations.get(REF_NAME) != name]
                self._by_digest = {}
                for kept in self._entries:
                    self._by_digest.setdefault(kept.digest, kept)
            self._entries.append(entry)
            self._named[name] = [entry]
            self._by_digest.setdefault(entry.digest, entry)

    def to_bytes(self) -> bytes:
        with self._lock:
            document: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": mt.OCI_INDEX,
                "manifests": [e.to_json() for e in self._entries],
            }
        if self.annotations:
            document["annotations"] = self.annotations
        return json.dumps(document, indent=1).encode()
