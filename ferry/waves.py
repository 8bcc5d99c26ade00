"""The order of a run's last phase: manifests in waves (children and subjects first), referrer
records, then tags in their root's wave (:class:`FinishWrites`, built by :func:`finish_waves`).

May be imported by ``ferry/plan.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import parse_manifest

Key = tuple[str, str]


class _Request(Protocol):
    @property
    def target_tags(self) -> tuple[str, ...]: ...


class _Owner(Protocol):
    @property
    def request(self) -> _Request: ...

    @property
    def root(self) -> Descriptor | None: ...


class _Write(Protocol):
    """What ordering needs of a write (``ferry.plan.Write`` is one): this module imports no plan."""

    @property
    def repository(self) -> str: ...

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def raw(self) -> bytes: ...

    @property
    def owners(self) -> Sequence[_Owner]: ...


Write = TypeVar("Write", bound=_Write)


@dataclass
class FinishWrites(Generic[Write]):
    """What finishing a run writes, in order: manifest waves, referrer records, tag waves. A manifest's
    wave follows those of its children and subject, a tag's is its root's: no write references a
    manifest being rewritten (distribution answers that race with 400 DIGEST_INVALID / MANIFEST_BLOB_UNKNOWN)."""

    manifests: list[list[Write]]
    referrers: list[Write]
    tags: list[list[Write]]


def _levels(manifests: dict[Key, Write]) -> tuple[dict[Key, int], set[Key]]:
    """(repository, digest) -> 0 for a manifest referencing no other of ``manifests``, else one more
    than the highest of its children and its subject; and the keys some other manifest references."""
    levels: dict[Key, int] = {}
    referenced: set[Key] = set()

    def level(key: Key) -> int:
        if key not in levels:
            levels[key] = 0  # content addressing rules out cycles; this only stops a forged one
            write = manifests[key]
            parsed = parse_manifest(write.raw, write.descriptor.media_type)
            edges = [d.digest for d in parsed.manifests] + ([parsed.subject.digest] if parsed.subject else [])
            referenced.update((key[0], d) for d in edges)
            levels[key] = 1 + max((level((key[0], d)) for d in edges if (key[0], d) in manifests), default=-1)
        return levels[key]

    for key in manifests:
        level(key)
    return levels, referenced


def _tag_written(manifests: dict[Key, Write], referenced: set[Key]) -> set[Key]:
    """The manifests a tag write can store: roots of tagged artifacts only, that nothing else references."""
    return {key for key, write in manifests.items() if key not in referenced and all(
        owner.request.target_tags and owner.root is not None and owner.root.digest == key[1]
        for owner in write.owners)}


def _waves(writes: Iterable[Write], level: Callable[[Write], tuple[int, int]]) -> list[list[Write]]:
    waves: dict[tuple[int, int], list[Write]] = {}
    for write in writes:
        waves.setdefault(level(write), []).append(write)
    return [waves[n] for n in sorted(waves)]


def finish_waves(manifests: dict[Key, Write], referrers: dict[tuple[str, str, str], Write],
                 tags: dict[Key, Write], tag_stores_manifest: bool) -> FinishWrites[Write]:
    """Order the writes (each keyed by repository and digest or tag). With ``tag_stores_manifest``
    (a registry: its PUT by tag stores the manifest) a tagged root that no other manifest of the
    run references is not written by digest first: its first tag writes it, one wave before the
    root's other tags (distribution refuses concurrent PUTs of one manifest)."""
    levels, referenced = _levels(manifests)
    by_tag = _tag_written(manifests, referenced) if tag_stores_manifest else set()
    unwritten = set(by_tag)

    def tag_wave(write: Write) -> tuple[int, int]:  # called once per tag, in order
        key = (write.repository, write.descriptor.digest)
        follows = key in by_tag and key not in unwritten
        unwritten.discard(key)
        return levels.get(key, 0), int(follows)

    return FinishWrites(
        manifests=_waves((w for k, w in manifests.items() if k not in by_tag),
                         lambda w: (levels[(w.repository, w.descriptor.digest)], 0)),
        referrers=list(referrers.values()),
        tags=_waves(tags.values(), tag_wave))
