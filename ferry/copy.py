"""The one copy engine: move graphs of content-addressed objects from a Source to a Destination.

Export (registry → archive), import (archive → registry) and registry → registry import are all
:func:`copy_artifacts`. The engine follows the rules of ARCHITECTURE.md:

1. Walk first: every requested artifact is resolved to its whole graph (index → manifests →
   config and layers → referrers) before a byte moves. The plan gives totals for progress.
2. Each blob once: blobs are deduplicated by digest across the run; what the destination has is
   skipped; a blob needed in several repositories is sent once and mounted into the others.
3. Order: blobs, then manifests children-first, then referrer records, then tags. A tag never
   names incomplete content, and a re-run redoes only what is missing.
4. Sources verify digests while streaming; destinations verify again as they store.
5. Bounded parallelism over blobs and artifacts.
6. Manifests are copied byte for byte (only a platform-filtered index is authored anew).
7. One result per artifact: a failure is reported and the rest proceed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from ferry.errors import ConflictError, FerryError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import build_index, parse_manifest, platform_string
from ferry.redact import redact
from ferry.transports.base import (
    BlobMounter,
    BlobOpener,
    Destination,
    PlanAware,
    PlannedArtifact,
    Source,
    WritePlan,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyRequest:
    """Copy ``source_repository`` at ``source_reference`` (tag or digest) into ``target_repository``.

    ``target_tags`` are written last; none means the content lands untagged (by digest only).
    """

    source_repository: str
    source_reference: str
    target_repository: str
    target_tags: tuple[str, ...] = ()

    @property
    def source_label(self) -> str:
        sep = "@" if ":" in self.source_reference else ":"
        return f"{self.source_repository}{sep}{self.source_reference}"

    @property
    def target_label(self) -> str:
        tags = ",".join(self.target_tags)
        return f"{self.target_repository}:{tags}" if tags else f"{self.target_repository} (untagged)"


class ProgressListener(Protocol):
    """Receives progress; called from worker threads."""

    def planned(self, total_bytes: int, total_blobs: int, artifacts: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def artifact_done(self, result: ArtifactResult) -> None: ...


@dataclass
class CopyOptions:
    """How to copy. ``platforms`` holds ``os/arch[/variant]`` strings; None copies every platform."""

    overwrite_tags: bool = False
    include_referrers: bool = True
    platforms: frozenset[str] | None = None
    parallelism: int = 8
    progress: ProgressListener | None = None
    #: Without ContinueOnErrors: if any artifact fails, no manifest or tag of any artifact is written.
    all_or_nothing: bool = False


@dataclass
class ArtifactResult:
    """What happened to one requested artifact."""

    source: str
    target: str
    status: str = "pending"  # copied | failed
    digest: str | None = None
    media_type: str | None = None
    tags: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    manifests: int = 0
    blobs: int = 0
    size: int = 0
    referrers: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "copied"


@dataclass
class CopyReport:
    """The outcome of a run: per-artifact results and blob transfer counters."""

    artifacts: list[ArtifactResult]
    blobs_total: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_total: int = 0
    bytes_uploaded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    @property
    def failed(self) -> list[ArtifactResult]:
        return [a for a in self.artifacts if not a.ok]


@dataclass
class _Plan:
    request: CopyRequest
    result: ArtifactResult
    root: Descriptor | None = None
    root_raw: bytes = b""
    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    referrer_links: list[tuple[Descriptor, Descriptor]] = field(default_factory=list)
    blobs: dict[str, Descriptor] = field(default_factory=dict)
    failed: bool = False

    def fail(self, error: BaseException) -> None:
        self.failed = True
        if self.result.error is None:
            self.result.error = redact(str(error))
        self.result.status = "failed"


def copy_artifacts(
    source: Source, destination: Destination, requests: list[CopyRequest], options: CopyOptions | None = None
) -> CopyReport:
    """Copy every request from ``source`` to ``destination``; never raises for a single artifact.

    Failures of one artifact (not found, denied, digest mismatch, tag conflict) are recorded in
    its :class:`ArtifactResult` and the others proceed. ``destination.commit()`` is called at the end.
    """
    options = options or CopyOptions()
    started = time.monotonic()
    plans = [_Plan(request=r, result=ArtifactResult(source=r.source_label, target=r.target_label)) for r in requests]
    with ThreadPoolExecutor(max_workers=max(1, options.parallelism), thread_name_prefix="ferry-copy") as pool:
        list(pool.map(lambda plan: _plan_artifact(source, destination, plan, options), plans))
        report = CopyReport(artifacts=[p.result for p in plans])
        live = [p for p in plans if not p.failed]
        if options.all_or_nothing and len(live) < len(plans):
            _hold_back(live, "not written: another artifact failed while planning (no ContinueOnErrors)")
            live = []
        placements = _blob_placements(live)
        report.blobs_total = len(placements)
        report.bytes_total = sum(group[0][1].size for group in placements.values())
        if isinstance(destination, PlanAware):
            destination.prepare(_write_plan(live, placements))
        if options.progress:
            options.progress.planned(report.bytes_total, report.blobs_total, len(plans))
        counters = _Counters()
        blob_errors: dict[str, BaseException] = {}
        jobs = [(digest, group) for digest, group in placements.items()]
        jobs.sort(key=lambda job: -job[1][0][1].size)  # big blobs first keeps all workers busy

        def run_blob(job: tuple[str, list[tuple[str, Descriptor, str]]]) -> None:
            digest, group = job
            try:
                _transfer_blob(source, destination, group, counters, options.progress)
            except FerryError as exc:
                blob_errors[digest] = exc
            except Exception as exc:  # a bug or an unexpected library error: report, don't hang the run
                log.exception("unexpected error copying blob %s", digest)
                blob_errors[digest] = exc

        list(pool.map(run_blob, jobs))
        for plan in live:
            for digest in plan.blobs:
                if digest in blob_errors:
                    plan.fail(blob_errors[digest])
                    break
        if options.all_or_nothing and any(p.failed for p in live):
            _hold_back([p for p in live if not p.failed],
                       "not tagged: another artifact failed while copying blobs (no ContinueOnErrors)")
        list(pool.map(lambda plan: _write_manifests_and_tags(destination, plan, options), live))
    destination.commit()
    report.blobs_uploaded = counters.uploaded
    report.blobs_mounted = counters.mounted
    report.blobs_skipped = counters.skipped
    report.bytes_uploaded = counters.bytes_uploaded
    report.seconds = time.monotonic() - started
    return report


def _hold_back(plans: list[_Plan], reason: str) -> None:
    for plan in plans:
        plan.fail(FerryError(reason))


# -- planning -------------------------------------------------------------------------------
def _plan_artifact(source: Source, destination: Destination, plan: _Plan, options: CopyOptions) -> None:
    request = plan.request
    try:
        root = source.resolve(request.source_repository, request.source_reference)
        raw = source.fetch_manifest(request.source_repository, root)
        root, raw = _select_platforms(source, request.source_repository, root, raw, options.platforms)
        plan.root, plan.root_raw = root, raw
        _walk(source, request.source_repository, root, raw, plan, set(), options.include_referrers)
        for tag in request.target_tags:
            existing = destination.get_tag(request.target_repository, tag)
            if existing is not None and existing.digest != root.digest and not options.overwrite_tags:
                raise ConflictError(
                    f"tag {request.target_repository}:{tag} in {destination.name} already points to "
                    f"{existing.digest}, not {root.digest}; use --force (OverwriteTags) to replace it")
    except FerryError as exc:
        plan.fail(exc)
    except Exception as exc:
        log.exception("unexpected error planning %s", request.source_label)
        plan.fail(exc)
    result = plan.result
    if plan.root is not None:
        result.digest, result.media_type = plan.root.digest, plan.root.media_type
    result.tags = list(request.target_tags)
    result.manifests = len(plan.manifests)
    result.blobs = len(plan.blobs)
    result.size = sum(b.size for b in plan.blobs.values()) + sum(len(r) for _, r in plan.manifests)
    result.referrers = len(plan.referrer_links)


def _select_platforms(
    source: Source, repository: str, root: Descriptor, raw: bytes, platforms: frozenset[str] | None
) -> tuple[Descriptor, bytes]:
    """Apply a platform filter to an index: one match is copied alone, several as a new index."""
    if not platforms or not mt.is_index(root.media_type):
        return root, raw
    parsed = parse_manifest(raw, root.media_type)
    chosen = [d for d in parsed.manifests if platform_string(d.platform) in platforms
              or platform_string(d.platform).rsplit("/", 1)[0] in platforms]
    if not chosen:
        available = ", ".join(sorted({platform_string(d.platform) for d in parsed.manifests}))
        raise FerryError(f"no platform of {repository}@{root.digest} matches {sorted(platforms)}; "
                         f"available: {available}")
    if len(chosen) == 1:
        child = chosen[0]
        return child, source.fetch_manifest(repository, child)
    new_raw = build_index(chosen, parsed.annotations or None)
    return Descriptor.for_bytes(mt.OCI_INDEX, new_raw), new_raw


def _walk(source: Source, repository: str, descriptor: Descriptor, raw: bytes, plan: _Plan,
          seen: set[str], include_referrers: bool) -> None:
    """Add ``descriptor`` and everything below it to ``plan`` in write order (children first)."""
    if descriptor.digest in seen:
        return
    seen.add(descriptor.digest)
    parsed = parse_manifest(raw, descriptor.media_type)
    for child in parsed.manifests:
        _walk(source, repository, child, source.fetch_manifest(repository, child), plan, seen, include_referrers)
        if child.platform:
            name = platform_string(child.platform)
            if name != "unknown/unknown" and name not in plan.result.platforms:
                plan.result.platforms.append(name)
    for blob in parsed.blobs:
        if mt.is_non_distributable(blob.media_type) and blob.urls:
            continue  # foreign layers stay at their URLs, as registries keep them
        plan.blobs.setdefault(blob.digest, blob)
    plan.manifests.append((descriptor, raw))
    if include_referrers:
        for referrer in source.referrers(repository, descriptor):
            if referrer.digest in seen:
                continue
            referrer_raw = source.fetch_manifest(repository, referrer)
            _walk(source, repository, referrer, referrer_raw, plan, seen, include_referrers)
            plan.referrer_links.append((descriptor, referrer))


def _blob_placements(plans: list[_Plan]) -> dict[str, list[tuple[str, Descriptor, str]]]:
    """digest -> [(target repository, descriptor, source repository)], each target once."""
    placements: dict[str, list[tuple[str, Descriptor, str]]] = {}
    for plan in plans:
        for digest, blob in plan.blobs.items():
            group = placements.setdefault(digest, [])
            if all(target != plan.request.target_repository for target, _, _ in group):
                group.append((plan.request.target_repository, blob, plan.request.source_repository))
    return placements


def _write_plan(plans: list[_Plan], placements: dict[str, list[tuple[str, Descriptor, str]]]) -> WritePlan:
    manifests: dict[str, tuple[Descriptor, bytes]] = {}
    for plan in plans:
        for descriptor, raw in plan.manifests:
            manifests.setdefault(descriptor.digest, (descriptor, raw))
    return WritePlan(
        artifacts=tuple(PlannedArtifact(p.request.target_repository, p.request.target_tags, p.root)
                        for p in plans if p.root is not None),
        blobs=tuple(group[0][1] for group in placements.values()),
        manifests=tuple(manifests.values()),
        referrers=tuple((p.request.target_repository, subject, referrer)
                        for p in plans for subject, referrer in p.referrer_links),
    )


# -- transfer -------------------------------------------------------------------------------
class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.uploaded = self.mounted = self.skipped = self.bytes_uploaded = 0

    def add(self, *, uploaded: int = 0, mounted: int = 0, skipped: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.uploaded += uploaded
            self.mounted += mounted
            self.skipped += skipped
            self.bytes_uploaded += nbytes


def _transfer_blob(source: Source, destination: Destination, group: list[tuple[str, Descriptor, str]],
                   counters: _Counters, progress: ProgressListener | None) -> None:
    """Make one digest present in every target repository of ``group``, moving its bytes at most once."""
    can_mount = isinstance(destination, BlobMounter)
    same_store = source.name == destination.name
    present_in: str | None = None
    for index, (target, descriptor, source_repository) in enumerate(group):
        if destination.has_blob(target, descriptor):
            counters.add(skipped=1)
            if progress and index == 0:
                progress.advance(descriptor.size)
            present_in = present_in or target
            continue
        if can_mount and _mount_from_anywhere(destination, target, descriptor,  # type: ignore[arg-type]
                                              present_in, source_repository if same_store else None):
            counters.add(mounted=1)
            if progress and index == 0:
                progress.advance(descriptor.size)
            present_in = present_in or target
            continue
        opener = _counting_opener(partial(source.open_blob, source_repository, descriptor),
                                  progress if index == 0 else None)
        sent = destination.put_blob(target, descriptor, opener)
        counters.add(uploaded=1, nbytes=sent)
        present_in = target


def _mount_from_anywhere(destination: BlobMounter, target: str, descriptor: Descriptor,
                         present_in: str | None, source_repository: str | None) -> bool:
    """Mount from where this run put the blob, the source repository on the same registry, or
    repositories remembered from earlier runs, in that order."""
    origins = [r for r in (present_in, source_repository) if r]
    origins += [r for r in destination.mount_candidates(target, descriptor) if r not in origins]
    return any(destination.mount_blob(target, descriptor, origin) for origin in origins if origin != target)


def _counting_opener(opener: BlobOpener, progress: ProgressListener | None) -> BlobOpener:
    if progress is None:
        return opener

    @contextmanager
    def counted() -> Iterator[Iterator[bytes]]:
        with opener() as stream:
            yield _count(stream, progress.advance)

    return counted


def _count(stream: Iterator[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    for chunk in stream:
        advance(len(chunk))
        yield chunk


def _write_manifests_and_tags(destination: Destination, plan: _Plan, options: CopyOptions) -> None:
    if plan.failed or plan.root is None:
        if options.progress:
            options.progress.artifact_done(plan.result)
        return
    target = plan.request.target_repository
    try:
        for descriptor, raw in plan.manifests:
            destination.put_manifest(target, descriptor, raw)
        for subject, referrer in plan.referrer_links:
            destination.add_referrer(target, subject, referrer)
        for tag in plan.request.target_tags:
            destination.set_tag(target, tag, plan.root, plan.root_raw)
        plan.result.status = "copied"
    except FerryError as exc:
        plan.fail(exc)
    except Exception as exc:
        log.exception("unexpected error writing %s", plan.request.target_label)
        plan.fail(exc)
    if options.progress:
        options.progress.artifact_done(plan.result)

