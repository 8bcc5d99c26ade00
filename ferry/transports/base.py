"""The Source and Destination contracts that every storage form implements.

A copy is ``Destination <- Source`` over a graph of content-addressed objects. The copy engine
(:mod:`ferry.copy`) relies on exactly these promises:

Source
    * ``resolve`` turns a tag or digest into the root descriptor, raising ``NotFoundError``.
    * ``fetch_manifest`` returns the manifest's exact bytes, already verified against the digest.
    * ``open_blob`` yields a stream of the blob's bytes; iterating raises ``IntegrityError`` if the
      bytes or their count disagree with the descriptor. Memory use does not grow with blob size.
    * ``referrers`` lists the manifests whose ``subject`` is the given descriptor ([] if none).

Destination
    * Writes come in this order: blobs, then manifests by digest (children before parents), then
      tags. There are no transactions: a destination must never expose a tag before the content
      it names is complete, and a re-run must redo only what is missing.
    * ``put_blob`` keeps nothing unless the stream ends without error (the source's stream is the
      one digest check of every byte, raising before its last chunk) and the size is right; it may
      call the opener again to retry from the first byte. It returns the bytes it transferred.
    * ``put_manifest`` stores raw bytes byte-for-byte under their digest.
    * ``set_tag`` points a tag at an already stored manifest.
    * ``add_referrer`` records that ``referrer`` refers to ``subject`` in whatever form the
      destination supports (an API that indexes subjects, or the ``sha256-<hex>`` tag fallback).
    * ``commit`` makes everything written visible (a layout writes its index, an archive seals).

Optional capabilities are separate protocols, checked with ``isinstance``: :class:`BlobMounter`
(cross-repository mount) and :class:`PlanAware` (receives the whole :class:`WritePlan` first).
All methods may be called from several threads at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ferry.oci.descriptor import Descriptor

#: Opens a fresh stream of a blob's bytes, starting at the first byte each time it is called.
BlobOpener = Callable[[], AbstractContextManager[Iterator[bytes]]]


@runtime_checkable
class Source(Protocol):
    """Where content is read from."""

    @property
    def name(self) -> str:
        """A human-readable location, used in messages (never contains secrets)."""
        ...

    def resolve(self, repository: str, reference: str) -> Descriptor:
        """The root descriptor for ``reference`` (a tag or a digest) in ``repository``."""
        ...

    def fetch_manifest(self, repository: str, descriptor: Descriptor) -> bytes:
        """The exact, digest-verified bytes of a manifest or index."""
        ...

    def open_blob(self, repository: str, descriptor: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        """A verifying stream of the blob's bytes."""
        ...

    def referrers(self, repository: str, subject: Descriptor) -> list[Descriptor]:
        """Descriptors of manifests that name ``subject`` as their subject."""
        ...

    def list_tags(self, repository: str) -> list[str]:
        """Every tag in ``repository``."""
        ...


@runtime_checkable
class Destination(Protocol):
    """Where content is written to."""

    @property
    def name(self) -> str:
        """A human-readable location, used in messages (never contains secrets)."""
        ...

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        ...

    def put_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        """Store a blob from ``opener``, verified; returns the number of bytes transferred."""
        ...

    def put_manifest(self, repository: str, descriptor: Descriptor, raw: bytes) -> None:
        """Store a manifest's raw bytes under its digest."""
        ...

    def get_tag(self, repository: str, tag: str) -> Descriptor | None:
        """What ``tag`` points at now, or None."""
        ...

    def set_tag(self, repository: str, tag: str, descriptor: Descriptor, raw: bytes) -> None:
        """Point ``tag`` at the stored manifest ``descriptor`` (whose bytes are ``raw``)."""
        ...

    def add_referrer(self, repository: str, subject: Descriptor, referrer: Descriptor) -> None:
        """Record ``referrer`` (already stored) as referring to ``subject``."""
        ...

    def commit(self) -> None:
        """Make all writes visible. Called once, after every write succeeded or was reported."""
        ...


@dataclass(frozen=True)
class PlannedArtifact:
    """One artifact the engine will write: its target repository, tags and root manifest."""

    repository: str
    tags: tuple[str, ...]
    root: Descriptor


@dataclass(frozen=True)
class WritePlan:
    """Everything a run will write, known before the first byte moves (walk first, copy second).

    ``blobs`` are unique by digest; ``manifests`` are unique by digest, children first.
    """

    artifacts: tuple[PlannedArtifact, ...]
    blobs: tuple[Descriptor, ...]
    manifests: tuple[tuple[Descriptor, bytes], ...]
    referrers: tuple[tuple[str, Descriptor, Descriptor], ...] = field(default_factory=tuple)


@runtime_checkable
class PlanAware(Protocol):
    """A destination that wants the whole plan first, e.g. to lay out an archive with metadata first."""

    def prepare(self, plan: WritePlan) -> None:
        """Called once, after planning and before any blob is written."""
        ...


@runtime_checkable
class BlobMounter(Protocol):
    """A destination that can link a blob from another repository without moving bytes."""

    def mount_blob(self, repository: str, descriptor: Descriptor, from_repository: str) -> bool:
        """True if ``descriptor`` is now in ``repository``; False if the mount was declined."""
        ...

    def mount_candidates(self, repository: str, descriptor: Descriptor) -> list[str]:
        """Other repositories of this destination believed to hold the blob (hints from earlier runs)."""
        ...
