"""The one copy engine: move graphs of content-addressed objects from a Source to a Destination.

Export (registry → archive), import (archive → registry) and registry → registry import are all
:func:`copy_artifacts`. The engine follows the rules of ARCHITECTURE.md:

1. Walk first: every requested artifact is resolved to its whole graph (index → manifests →
   config and layers → referrers) before a byte moves. The plan gives totals for progress.
2. Each blob once: blobs are deduplicated by digest across the run; what the destination has is
   skipped; a blob needed in several repositories is sent once and mounted into the others.
3. Order: blobs, then every artifact's manifests children-first (each digest once per repository),
   then referrer records, then tags, each read back. A tag never names incomplete content, nothing
   is tagged while an all-or-nothing run can still fail, and a re-run redoes only what is missing.
4. Every byte is verified once against its digest, by the source's stream while it passes (it
   raises before its last chunk); destinations check sizes, and a registry verifies what it stores.
5. Bounded parallelism over blobs, manifests and tags.
6. Manifests are copied byte for byte (only a platform-filtered index is authored anew).
7. One result per artifact: a failure is reported and the rest proceed.

Its data (requests, options, results, the serializable plan) is :mod:`ferry.plan`. May be imported
by ``ferry/jobs`` and the faces; imports ``ferry/transports`` and ``ferry/oci``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

from ferry.errors import ConflictError, FerryError, InvalidReferenceError, UnsupportedError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import parse_manifest, platform_string
from ferry.plan import (
    ArtifactPlan,
    ArtifactResult,
    BlobBatchResult,
    CopyOptions,
    CopyPlan,
    CopyReport,
    CopyRequest,
    Placement,
    ProgressListener,
    Write,
    hold_back,
    place_blobs,
)
from ferry.platforms import select_platforms
from ferry.redact import redact
from ferry.transports.base import (
    BlobMounter,
    BlobOpener,
    Destination,
    PlanAware,
    Source,
)

log = logging.getLogger(__name__)


def copy_artifacts(
    source: Source, destination: Destination, requests: list[CopyRequest], options: CopyOptions | None = None,
    review: Callable[[CopyPlan], object] | None = None,
) -> CopyReport:
    """Copy every request from ``source`` to ``destination``; never raises for a single artifact.

    Failures of one artifact (not found, denied, digest mismatch, tag conflict) are recorded in
    its :class:`ArtifactResult` and the others proceed. ``destination.commit()`` is called at the end.
    This is :func:`plan_copy`, then ``review`` (the seam where gates may refuse artifacts before a
    byte moves, see :mod:`ferry.jobs.gate`), then :func:`transfer_blobs` of every blob, then
    :func:`finish_copy`.
    """
    options = options or CopyOptions()
    started = time.monotonic()
    plan = plan_copy(source, destination, requests, options)
    if review is not None:
        review(plan)
    if isinstance(destination, PlanAware):
        destination.prepare(plan.write_plan())
    if options.progress:
        options.progress.planned(plan.bytes_total, len(plan.placements), len(plan.artifacts))
    transferred = transfer_blobs(source, destination, plan, list(plan.placements), options)
    report = finish_copy(destination, plan, transferred, options)
    report.seconds = time.monotonic() - started
    return report


def plan_copy(source: Source, destination: Destination | None, requests: list[CopyRequest],
              options: CopyOptions | None = None) -> CopyPlan:
    """Walk every request's graph (in parallel) and place each unique blob; reads only.

    Tag conflicts with ``destination`` are found here, before anything is written (None: no
    destination, only the walk, as ``ferry inspect`` does). With ``all_or_nothing``, one failure
    holds every artifact back.
    """
    options = options or CopyOptions()
    artifacts = [ArtifactPlan(request=r, result=ArtifactResult(source=r.source_label, target=r.target_label))
                 for r in requests]
    with ThreadPoolExecutor(max_workers=max(1, options.parallelism), thread_name_prefix="ferry-plan") as pool:
        list(pool.map(lambda plan: _plan_artifact(source, destination, plan, options), artifacts))
    plan = CopyPlan(artifacts)
    plan.fail_tag_collisions()
    if options.all_or_nothing and any(a.failed for a in artifacts):
        hold_back(plan.live, "not written: another artifact failed while planning (no ContinueOnErrors)")
    plan.placements = place_blobs(plan.live)
    return plan


def transfer_blobs(source: Source, destination: Destination, plan: CopyPlan, digests: list[str],
                   options: CopyOptions | None = None) -> BlobBatchResult:
    """Make each of ``digests`` present wherever ``plan`` places it, in parallel; never raises per blob."""
    options = options or CopyOptions()
    result, lock = BlobBatchResult(), threading.Lock()
    jobs = sorted(digests, key=lambda d: -plan.placements[d][0].descriptor.size)  # big first: workers stay busy

    def count(**more: int) -> None:
        with lock:
            for name, n in more.items():
                setattr(result, name, getattr(result, name) + n)

    def run_blob(digest: str) -> None:
        try:
            _transfer_blob(source, destination, plan.placements[digest], count, options.progress)
        except FerryError as exc:
            result.errors[digest] = redact(str(exc))
            if exc.transient:
                result.transient.append(digest)
        except Exception as exc:  # a bug or an unexpected library error: report, don't hang the run
            log.exception("unexpected error copying blob %s", digest)
            result.errors[digest] = redact(f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=max(1, options.parallelism), thread_name_prefix="ferry-blob") as pool:
        list(pool.map(run_blob, jobs))
    return result


def finish_copy(destination: Destination, plan: CopyPlan, transferred: BlobBatchResult,
                options: CopyOptions | None = None) -> CopyReport:
    """Fail artifacts whose blobs failed, then write manifests, referrer records and tags, then commit.

    Every manifest of every artifact is written (each digest once per repository, children first)
    before any referrer record, and those before any tag. With ``all_or_nothing`` a failure before
    the tags writes no tag at all. Each result's ``tagged`` says which tags were written and read back.
    """
    options = options or CopyOptions()
    live = plan.live
    for artifact in live:
        for digest in artifact.blobs:
            if digest in transferred.errors:
                artifact.fail(transferred.errors[digest])
                break
    if options.all_or_nothing and any(a.failed for a in live):
        hold_back([a for a in live if not a.failed],
                   "not tagged: another artifact failed while copying blobs (no ContinueOnErrors)")
    _write_all(destination, plan, options)
    destination.commit()
    return CopyReport(
        artifacts=[a.result for a in plan.artifacts], blobs_total=len(plan.placements),
        blobs_uploaded=transferred.uploaded, blobs_mounted=transferred.mounted, blobs_skipped=transferred.skipped,
        bytes_total=plan.bytes_total, bytes_uploaded=transferred.bytes_uploaded)


# -- planning -------------------------------------------------------------------------------
def _plan_artifact(source: Source, destination: Destination | None, plan: ArtifactPlan,
                   options: CopyOptions) -> None:
    request = plan.request
    try:
        if (problem := request.invalid_name()) is not None:
            raise InvalidReferenceError(problem)
        root = source.resolve(request.source_repository, request.source_reference)
        raw = source.fetch_manifest(request.source_repository, root)
        root, raw = select_platforms(source, request.source_repository, root, raw, options.platforms)
        plan.root, plan.root_raw = root, raw
        _walk(source, request.source_repository, root, raw, plan, set(), options.include_referrers,
              options.include_foreign_layers)
        if destination is not None:
            _check_tags(destination, request, root, options)
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


def _check_tags(destination: Destination, request: CopyRequest, root: Descriptor, options: CopyOptions) -> None:
    """ConflictError if a target tag points elsewhere and OverwriteTags was not asked for."""
    for tag in request.target_tags if not options.overwrite_tags else ():
        _check_tag(destination, Write(request.target_repository, root, tag=tag))


def _check_tag(destination: Destination, write: Write) -> None:
    current = destination.get_tag(write.repository, write.tag)
    if current is not None and current.digest != write.descriptor.digest:
        raise ConflictError(
            f"tag {write.repository}:{write.tag} in {destination.name} already points to {current.digest}, not "
            f"{write.descriptor.digest}; replace it with --force, --overwrite-tags or OverwriteTags")


#: Indexes nest (an index of images, an image's referrers, a referrer's referrers): deeper than this
#: is refused, so a hostile graph ends with a clear error rather than a RecursionError.
MAX_DEPTH = 8


def _walk(source: Source, repository: str, descriptor: Descriptor, raw: bytes, plan: ArtifactPlan,
          seen: set[str], include_referrers: bool, include_foreign: bool = False, depth: int = 0) -> None:
    """Add ``descriptor`` and everything below it to ``plan`` in write order (children first)."""
    if descriptor.digest in seen:
        return
    if depth > MAX_DEPTH:
        raise UnsupportedError(f"{repository}@{descriptor.digest}: manifests nested more than {MAX_DEPTH} levels "
                               "deep; refused")
    seen.add(descriptor.digest)
    parsed = parse_manifest(raw, descriptor.media_type)
    for child in parsed.manifests:
        _walk(source, repository, child, source.fetch_manifest(repository, child), plan, seen, include_referrers,
              include_foreign, depth + 1)
        if child.platform:
            name = platform_string(child.platform)
            if name != "unknown/unknown" and name not in plan.result.platforms:
                plan.result.platforms.append(name)
    for blob in parsed.blobs:
        if mt.is_non_distributable(blob.media_type) and blob.urls and not (
                include_foreign or _holds_entry(source, blob.digest)):
            continue  # foreign layers stay at their URLs, as registries keep them
        plan.blobs.setdefault(blob.digest, blob)
    plan.manifests.append((descriptor, raw))
    if include_referrers:
        for referrer in source.referrers(repository, descriptor):
            if referrer.digest in seen:
                continue
            referrer_raw = source.fetch_manifest(repository, referrer)
            _walk(source, repository, referrer, referrer_raw, plan, seen, include_referrers, include_foreign, depth + 1)
            plan.referrer_links.append((descriptor, referrer))


def _holds_entry(source: Source, digest: str) -> bool:
    """Whether ``source`` is an archive holding ``digest`` (only archives answer ``has_entry``)."""
    has_entry = getattr(source, "has_entry", None)
    return bool(has_entry(digest)) if callable(has_entry) else False


# -- transfer -------------------------------------------------------------------------------
def _transfer_blob(source: Source, destination: Destination, group: list[Placement],
                   count: Callable[..., None], progress: ProgressListener | None) -> None:
    """Make one digest present in every target repository of ``group``, moving its bytes at most once."""
    can_mount = isinstance(destination, BlobMounter)
    same_store = source.name == destination.name
    present_in: str | None = None
    for index, placement in enumerate(group):
        target, descriptor, source_repository = placement.target, placement.descriptor, placement.source
        if destination.has_blob(target, descriptor):
            count(skipped=1)
            if progress and index == 0:
                progress.advance(descriptor.size)
            present_in = present_in or target
            continue
        if can_mount and _mount_from_anywhere(destination, target, descriptor,  # type: ignore[arg-type]
                                              present_in, source_repository if same_store else None):
            count(mounted=1)
            if progress and index == 0:
                progress.advance(descriptor.size)
            present_in = present_in or target
            continue
        opener = _counting_opener(partial(source.open_blob, source_repository, descriptor),
                                  progress if index == 0 else None)
        sent = destination.put_blob(target, descriptor, opener)
        count(uploaded=1, bytes_uploaded=sent)
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


# -- finishing: manifests, referrer records, tags ------------------------------------------
def _write_all(destination: Destination, plan: CopyPlan, options: CopyOptions) -> None:
    # A tag write that stores its root may fail like a manifest write; all-or-nothing needs every
    # manifest stored before the first tag, so only artifacts that stand alone skip the PUT by digest.
    writes = plan.finish_writes(tag_stores_manifest=getattr(destination, "tag_stores_manifest", False)
                                and not options.all_or_nothing)
    phases: list[tuple[list[Write], Callable[[Write], object], str]] = [
        (wave, lambda w: destination.put_manifest(w.repository, w.descriptor, w.raw), "writing manifests")
        for wave in writes.manifests]
    phases.append((writes.referrers, partial(_add_referrer, destination), "recording referrers"))
    if not options.overwrite_tags:  # the tag may have moved since planning
        phases.append(([w for wave in writes.tags for w in wave], partial(_check_tag, destination), "checking tags"))
    with ThreadPoolExecutor(max_workers=max(1, options.parallelism), thread_name_prefix="ferry-write") as pool:
        if all(_run_phase(pool, plan, options, *phase) for phase in phases):  # stops at the first that says stop
            _write_tags(destination, pool, writes.tags, options)
    for artifact in plan.artifacts:
        if not artifact.failed and artifact.root is not None:
            artifact.result.status = "copied"
        if options.progress:
            options.progress.artifact_done(artifact.result)


def _run_phase(pool: ThreadPoolExecutor, plan: CopyPlan, options: CopyOptions, writes: list[Write],
               action: Callable[[Write], object], doing: str) -> bool:
    """Run ``action`` on the live ``writes``; False when the run stops there (a failure, all-or-nothing)."""
    if _each(pool, [w for w in writes if w.live], action) and options.all_or_nothing:
        hold_back(plan.live, f"not tagged: another artifact failed while {doing} (no ContinueOnErrors)")
        return False
    return True


def _each(pool: ThreadPoolExecutor, writes: list[Write], action: Callable[[Write], object]) -> list[Write]:
    """Run ``action`` on every write in parallel, fail the owners of those that raise; returns those."""
    def run(write: Write) -> BaseException | None:
        try:
            action(write)
        except Exception as exc:  # FerryError; or a bug, an unexpected library error: logged, reported
            if not isinstance(exc, FerryError):
                log.exception("unexpected error writing %s", write.tag or write.descriptor.digest)
            return exc
        return None

    failed = []
    for write, error in zip(writes, pool.map(run, writes), strict=True):
        if error is not None:
            failed.append(write)
            for owner in write.owners:
                owner.fail(error)
    return failed


def _write_tags(destination: Destination, pool: ThreadPoolExecutor, waves: list[list[Write]],
                options: CopyOptions) -> None:
    """Write the tags wave by wave (all-or-nothing stops at the first failure), then read each back
    after ``tag_settle_seconds``: registries have no conditional tag write, so a tag another writer
    replaced meanwhile is a ConflictError, and ``tagged`` lists only tags read back as written."""
    written: list[Write] = []
    for number, wave in enumerate(waves):
        todo = [w for w in wave if w.live]
        failed = _each(pool, todo, lambda w: destination.set_tag(w.repository, w.tag, w.descriptor, w.raw))
        written += [w for w in todo if w not in failed]
        if failed and options.all_or_nothing:
            hold_back([a for later in waves[number + 1:] for w in later for a in w.owners if not a.failed],
                      "not tagged: another artifact failed while writing tags (no ContinueOnErrors)")
            break
    if written and options.tag_settle_seconds > 0:
        time.sleep(options.tag_settle_seconds)
    lost = _each(pool, written, partial(_verify_tag, destination))
    for write in written:
        for owner in write.owners if write not in lost else ():
            owner.result.tagged.append(write.tag)


def _add_referrer(destination: Destination, write: Write) -> None:
    assert write.subject is not None
    destination.add_referrer(write.repository, write.subject, write.descriptor)


def _verify_tag(destination: Destination, write: Write) -> None:
    current = destination.get_tag(write.repository, write.tag)
    if current is None or current.digest != write.descriptor.digest:
        now = f"points to {current.digest}" if current else "is gone"
        raise ConflictError(
            f"tag {write.repository}:{write.tag} in {destination.name} {now} after Ferry pointed it to "
            f"{write.descriptor.digest}: another writer replaced it at the same time")
