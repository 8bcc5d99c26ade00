"""An in-memory Source and Destination that keep the promises of ``ferry/transports/base.py``,
and builders for the content they hold.

No service, no file, no socket: unit tests copy between these and count what was written.

* :class:`MemorySource` serves manifests byte for byte (verified against the digest asked for),
  verifying blob streams, tags (``list_tags`` is ``[]`` for an unknown repository, as a registry
  answers) and referrers (every stored manifest whose ``subject`` is the given digest).
* :class:`MemoryDestination` verifies digest and size while streaming (an excess fails before the
  next chunk is taken), keeps nothing of a failed blob, stores manifests byte for byte, refuses
  a manifest whose blobs or children are missing and a tag or referrer naming a manifest it lacks,
  and logs every write in ``writes`` so tests can count and order them.
* :func:`image`, :func:`index` and :func:`referrer` build :class:`Content` with hashlib digests.

Deliberately independent of ``tests/harness``; it uses only ferry's own Descriptor type, which
the Protocols are written in.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import IntegrityError, NotFoundError
from ferry.oci.descriptor import Descriptor
from ferry.transports.base import BlobOpener

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 7  # small and odd, so every blob streams in several uneven chunks


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def describe(media_type: str, data: bytes, **extra: Any) -> Descriptor:
    raw = {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}
    return Descriptor(media_type, raw["digest"], len(data), raw)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1).encode()  # indented on purpose: copies must stay byte-exact


# --------------------------------------------------------------------------- content builders


@dataclass(frozen=True)
class Content:
    """A root manifest (``descriptor``, ``raw``) with every manifest below it (children first, the
    root last) and every blob it needs."""

    descriptor: Descriptor
    raw: bytes
    manifests: tuple[tuple[Descriptor, bytes], ...]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def blob_bytes(self) -> int:
        return sum(len(b) for b in self.blobs.values())


def image(name: str, layers: int = 2, layer_size: int = 40, *, platform: dict[str, str] | None = None) -> Content:
    """An OCI image: a config and ``layers`` layers, all derived from ``name`` (distinct names,
    distinct digests)."""
    config = _json({"architecture": (platform or {}).get("architecture", "amd64"),
                    "os": (platform or {}).get("os", "linux"), "name": name})
    layer_bytes = [(f"{name}/layer{i}/".encode() * layer_size)[:layer_size + i] for i in range(layers)]
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": describe(OCI_CONFIG, config).to_json(),
                "layers": [describe(OCI_LAYER, b).to_json() for b in layer_bytes]}
    raw = _json(document)
    extra = {"platform": platform} if platform else {}
    descriptor = describe(OCI_MANIFEST, raw, **extra)
    blobs = {sha256(b): b for b in [config, *layer_bytes]}
    return Content(descriptor, raw, ((descriptor, raw),), blobs)


def index(*children: Content) -> Content:
    """An OCI index of platform-specific images (each built with ``platform=``)."""
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [c.descriptor.to_json() for c in children]}
    raw = _json(document)
    descriptor = describe(OCI_INDEX, raw)
    manifests = (*(m for c in children for m in c.manifests), (descriptor, raw))
    blobs = {d: b for c in children for d, b in c.blobs.items()}
    return Content(descriptor, raw, manifests, blobs)


def referrer(subject: Content, artifact_type: str = "application/vnd.example.signature",
             payload: bytes = b"sig") -> Content:
    """An OCI artifact manifest whose ``subject`` is ``subject`` (a signature, an SBOM)."""
    empty = b"{}"
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": describe(OCI_EMPTY, empty).to_json(),
                "layers": [describe("application/octet-stream", payload).to_json()],
                "subject": {"mediaType": subject.descriptor.media_type, "digest": subject.digest,
                            "size": subject.descriptor.size}}
    raw = _json(document)
    descriptor = describe(OCI_MANIFEST, raw, artifactType=artifact_type)
    return Content(descriptor, raw, ((descriptor, raw),), {sha256(empty): empty, sha256(payload): payload})


# --------------------------------------------------------------------------- the source


class MemorySource:
    """Repositories of manifests, blobs and tags, read through the Source protocol."""

    def __init__(self, name: str = "memory-source") -> None:
        self._name = name
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, dict[str, tuple[str, bytes]]] = {}  # repo -> digest -> (media type, raw)
        self.tags: dict[str, dict[str, str]] = {}  # repo -> tag -> digest
        self.blob_reads: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    def push(self, repository: str, content: Content, *tags: str) -> Content:
        """Store ``content`` in ``repository`` and point ``tags`` at its root."""
        self.blobs.update(content.blobs)
        stored = self.manifests.setdefault(repository, {})
        for descriptor, raw in content.manifests:
            stored[descriptor.digest] = (descriptor.media_type, raw)
        for tag in tags:
            self.tags.setdefault(repository, {})[tag] = content.digest
        return content

    def tag(self, repository: str, tag: str, digest: str) -> None:
        """Point ``tag`` at any digest (e.g. a ``sha256-<hex>`` fallback tag)."""
        self.tags.setdefault(repository, {})[tag] = digest

    def _descriptor(self, repository: str, digest: str) -> Descriptor:
        media_type, raw = self._raw(repository, digest)
        return describe(media_type, raw)

    def _raw(self, repository: str, digest: str) -> tuple[str, bytes]:
        try:
            return self.manifests[repository][digest]
        except KeyError:
            raise NotFoundError(f"manifest {repository}@{digest} is not in {self.name}") from None

    def resolve(self, repository: str, reference: str) -> Descriptor:
        if ":" in reference:
            return self._descriptor(repository, reference)
        digest = self.tags.get(repository, {}).get(reference)
        if digest is None:
            raise NotFoundError(f"tag {repository}:{reference} is not in {self.name}")
        return self._descriptor(repository, digest)

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        _, raw = self._raw(repository, descriptor.digest)
        if sha256(raw) != descriptor.digest:
            raise IntegrityError(f"manifest {descriptor.digest} in {self.name} does not hash to its digest")
        return raw

    @contextmanager
    def open_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        if descriptor.digest not in self.blobs:
            raise NotFoundError(f"blob {descriptor.digest} is not in {self.name}")
        self.blob_reads.append(descriptor.digest)
        data = self.blobs[descriptor.digest]
        yield verify_chunks((data[i:i + CHUNK] for i in range(0, len(data), CHUNK)), descriptor)

    def referrers(self, repository: str, subject: Descriptor) -> list[Descriptor]:
        found = []
        for _, (media_type, raw) in sorted(self.manifests.get(repository, {}).items()):
            document = json.loads(raw)
            if (document.get("subject") or {}).get("digest") == subject.digest:
                extra = {"artifactType": document["artifactType"]} if "artifactType" in document else {}
                found.append(describe(media_type, raw, **extra))
        return found

    def list_tags(self, repository: str) -> list[str]:
        return list(self.tags.get(repository, {}))


def verify_chunks(chunks: Iterable[bytes], descriptor: Descriptor) -> Iterator[bytes]:
    """Pass ``chunks`` through; IntegrityError on excess (at once), truncation or a digest mismatch
    (before the last chunk is handed over)."""
    hasher = hashlib.sha256()
    size = 0
    held: bytes | None = None
    for chunk in chunks:
        size += len(chunk)
        if size > descriptor.size:
            raise IntegrityError(f"blob {descriptor.digest}: more than {descriptor.size} bytes")
        hasher.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if size != descriptor.size or "sha256:" + hasher.hexdigest() != descriptor.digest:
        raise IntegrityError(f"blob {descriptor.digest}: got {size} bytes hashing to sha256:{hasher.hexdigest()}")
    if held is not None:
        yield held


# --------------------------------------------------------------------------- the destination


class MemoryDestination:
    """Per-repository blobs, manifests, tags and referrer records, written through the Destination protocol.

    ``writes`` logs every successful write as ``(kind, repository, key)`` with kind one of
    ``blob``, ``manifest``, ``referrer``, ``tag``; ``commits`` counts :meth:`commit` calls.
    """

    def __init__(self, name: str = "memory-destination") -> None:
        self._name = name
        self._lock = threading.Lock()
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[str, dict[str, bytes]] = {}
        self.tags: dict[str, dict[str, Descriptor]] = {}
        self.referrer_records: dict[str, dict[str, list[str]]] = {}  # repo -> subject digest -> referrers
        self.writes: list[tuple[str, str, str]] = []
        self.commits = 0

    @property
    def name(self) -> str:
        return self._name

    def written(self, kind: str) -> list[tuple[str, str]]:
        return [(repo, key) for k, repo, key in self.writes if k == kind]

    @property
    def untouched(self) -> bool:
        """Nothing stored at all (commit may have been called)."""
        return not (self.writes or self.blobs or self.manifests or self.tags or self.referrer_records)

    def _log(self, kind: str, repository: str, key: str) -> None:
        self.writes.append((kind, repository, key))

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        with self._lock:
            data = self.blobs.get(repository, {}).get(descriptor.digest)
        return data is not None and len(data) == descriptor.size

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        received: list[bytes] = []  # kept only once verified: a failure leaves nothing behind
        with opener() as stream:
            for chunk in verify_chunks(stream, descriptor):
                received.append(chunk)
        data = b"".join(received)
        with self._lock:
            self.blobs.setdefault(repository, {})[descriptor.digest] = data
            self._log("blob", repository, descriptor.digest)
        return len(data)

    def put_manifest(self, repository: str, descriptor: Descriptor, raw: bytes) -> None:
        if sha256(raw) != descriptor.digest or len(raw) != descriptor.size:
            raise IntegrityError(f"manifest {descriptor.digest}: the bytes given do not match it")
        document = json.loads(raw)
        needed_blobs = [d for d in [document.get("config"), *(document.get("layers") or [])]
                        if d and not d.get("urls")]
        with self._lock:
            blobs = self.blobs.get(repository, {})
            manifests = self.manifests.get(repository, {})
            missing = [d["digest"] for d in needed_blobs if d["digest"] not in blobs]
            missing += [d["digest"] for d in document.get("manifests") or [] if d["digest"] not in manifests]
            if missing:
                raise NotFoundError(f"manifest {descriptor.digest} names content {repository} lacks: {missing}")
            self.manifests.setdefault(repository, {})[descriptor.digest] = raw
            self._log("manifest", repository, descriptor.digest)

    def get_tag(self, repository: str, tag: str) -> Descriptor | None:
        with self._lock:
            return self.tags.get(repository, {}).get(tag)

    def set_tag(self, repository: str, tag: str, descriptor: Descriptor, raw: bytes) -> None:
        with self._lock:
            if self.manifests.get(repository, {}).get(descriptor.digest) != raw:
                raise NotFoundError(f"tag {repository}:{tag} would name {descriptor.digest}, which is not stored")
            self.tags.setdefault(repository, {})[tag] = descriptor
            self._log("tag", repository, tag)

    def add_referrer(self, repository: str, subject: Descriptor, referrer: Descriptor) -> None:
        with self._lock:
            if referrer.digest not in self.manifests.get(repository, {}):
                raise NotFoundError(f"referrer {referrer.digest} is not stored in {repository}")
            listed = self.referrer_records.setdefault(repository, {}).setdefault(subject.digest, [])
            if referrer.digest not in listed:
                listed.append(referrer.digest)
            self._log("referrer", repository, referrer.digest)

    def commit(self) -> None:
        with self._lock:
            self.commits += 1
