"""Registry transport: a Source and a Destination over the Distribution API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

from ferry.blobcache import BlobLocationCache
from ferry.errors import IntegrityError, NotFoundError
from ferry.foreign import open_foreign_blob
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import build_index, parse_manifest
from ferry.oci.referrers import fallback_tag
from ferry.registry.client import RegistryClient
from ferry.transports.base import BlobOpener


def referrer_descriptor(raw: bytes, media_type: str, digest: str) -> Descriptor:
    """The descriptor to list for a referrer manifest: with its artifactType and annotations."""
    parsed = parse_manifest(raw, media_type)
    extra: dict[str, object] = {}
    artifact_type = parsed.artifact_type or (parsed.blobs[0].media_type if parsed.blobs else None)
    if artifact_type:
        extra["artifactType"] = artifact_type
    if parsed.annotations:
        extra["annotations"] = parsed.annotations
    raw_desc = {"mediaType": media_type, "digest": digest, "size": len(raw), **extra}
    return Descriptor(media_type=media_type, digest=digest, size=len(raw), raw=raw_desc)


class RegistrySource:
    """Reads from a registry through one shared :class:`RegistryClient`.

    With a ``cache``, the repositories blobs are read from are remembered, so a later copy into
    the same registry can mount them instead of uploading. A manifest read by :meth:`resolve` is
    kept (verified) until its first :meth:`fetch_manifest`: a tag costs one GET, not a second by digest.
    A registry without the referrers API is asked for the ``sha256-<hex>`` fallback tag only when
    that tag is in the repository's tag list, if this source has listed it (``--all-tags``, globs).
    """

    def __init__(self, client: RegistryClient, cache: BlobLocationCache | None = None) -> None:
        self.client = client
        self.cache = cache
        self._resolved: dict[tuple[str, str], bytes] = {}
        self._resolved_lock = threading.Lock()
        self._listed: dict[str, frozenset[str]] = {}

    @property
    def name(self) -> str:
        return self.client.registry

    def resolve(self, repository: str, reference: str) -> Descriptor:
        fetched = self.client.get_manifest(repository, reference)
        with self._resolved_lock:
            self._resolved[(repository, fetched.digest)] = fetched.raw
        return fetched.descriptor

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        with self._resolved_lock:
            raw = self._resolved.pop((repository, descriptor.digest), None)
        if raw is not None and len(raw) == descriptor.size:  # verified against its digest when read
            return raw
        return self.client.get_manifest(repository, descriptor.digest).raw

    def open_blob(self, repository: str, descriptor: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        if mt.is_non_distributable(descriptor.media_type) and descriptor.urls:
            return self._open_foreign(repository, descriptor)
        if self.cache is not None:
            self.cache.record(self.client.registry, repository, descriptor.digest)
        return self.client.open_blob(repository, descriptor)

    @contextmanager
    def _open_foreign(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        """A foreign layer from the registry if it holds one, else from the descriptor's URLs."""
        with ExitStack() as stack:
            try:
                stream = stack.enter_context(self.client.open_blob(repository, descriptor))
            except NotFoundError:
                stream = stack.enter_context(open_foreign_blob(
                    descriptor, retry=self.client.retry, missing_from=f"{self.client.registry}/{repository}"))
            yield stream

    def referrers(self, repository: str, subject: Descriptor) -> list[Descriptor]:
        listed = self.client.list_referrers(repository, subject.digest)
        if listed is not None:
            return listed
        tag = fallback_tag(subject.digest)
        if tag not in self._listed.get(repository, (tag,)):
            return []
        try:
            index = self.client.get_manifest(repository, tag)
        except NotFoundError:
            return []
        return list(parse_manifest(index.raw, index.media_type).manifests)

    def list_tags(self, repository: str) -> list[str]:
        tags = self.client.list_tags(repository)
        with self._resolved_lock:
            self._listed[repository] = frozenset(tags)
        return tags


class RegistryDestination:
    """Writes to a registry; mounts blobs across repositories; keeps the referrers fallback index.

    With a ``cache``, every blob seen or written is remembered, and :meth:`mount_candidates`
    offers those repositories to the engine on later runs.
    """

    #: A PUT by tag stores the manifest: the engine need not PUT a tagged root by digest first.
    tag_stores_manifest = True

    def __init__(self, client: RegistryClient, cache: BlobLocationCache | None = None) -> None:
        self.client = client
        self.cache = cache
        self._referrer_locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def name(self) -> str:
        return self.client.registry

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        present = self.client.has_blob(repository, descriptor.digest, size=descriptor.size)
        if present:
            self._remember(repository, descriptor)
        return present

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        sent = self.client.push_blob(repository, descriptor, opener)
        self._remember(repository, descriptor)
        return sent

    def mount_blob(self, repository: str, descriptor: Descriptor, from_repository: str) -> bool:
        mounted = self.client.mount_blob(repository, descriptor.digest, from_repository)
        if mounted:
            self._remember(repository, descriptor)
        elif self.cache is not None:
            self.cache.forget(self.client.registry, from_repository, descriptor.digest)
        return mounted

    def mount_candidates(self, repository: str, descriptor: Descriptor) -> list[str]:
        if self.cache is None:
            return []
        return [r for r in self.cache.repositories(self.client.registry, descriptor.digest) if r != repository]

    def _remember(self, repository: str, descriptor: Descriptor) -> None:
        if self.cache is not None:
            self.cache.record(self.client.registry, repository, descriptor.digest)

    def put_manifest(self, repository: str, descriptor: Descriptor, raw: bytes) -> None:
        self.client.put_manifest(repository, descriptor.digest, raw, descriptor.media_type)

    def get_tag(self, repository: str, tag: str) -> Descriptor | None:
        return self.client.head_manifest(repository, tag)

    def set_tag(self, repository: str, tag: str, descriptor: Descriptor, raw: bytes) -> None:
        """PUT ``raw`` under ``tag``: stores the manifest too; the registry must report its digest."""
        stored = self.client.put_manifest(repository, tag, raw, descriptor.media_type)
        if stored != descriptor.digest:
            raise IntegrityError(f"tag {repository}:{tag} in {self.name}: the registry stored the manifest as "
                                 f"{stored}, not {descriptor.digest}")

    def add_referrer(self, repository: str, subject: Descriptor, referrer: Descriptor) -> None:
        if self.client.supports_referrers_api(repository):
            return  # the registry indexed the referrer when its manifest (with subject) was pushed
        tag = fallback_tag(subject.digest)
        with self._lock_for(repository, subject.digest):
            try:
                current = self.client.get_manifest(repository, tag)
                entries = list(parse_manifest(current.raw, current.media_type).manifests)
                annotations = json.loads(current.raw).get("annotations")
            except NotFoundError:
                entries, annotations = [], None
            if any(entry.digest == referrer.digest for entry in entries):
                return
            raw = build_index([*entries, referrer], annotations)
            self.client.put_manifest(repository, tag, raw, mt.OCI_INDEX)

    def commit(self) -> None:
        """Registry writes are visible as soon as they succeed."""

    def _lock_for(self, repository: str, digest: str) -> threading.Lock:
        with self._locks_guard:
            return self._referrer_locks.setdefault((repository, digest), threading.Lock())
