"""What a job copies: its selection expanded into copy requests, against the opened source.

* :class:`~ferry.jobs.spec.Artifacts`: as given.
* :class:`~ferry.jobs.spec.ExportRefs`: ``repo`` means ``latest``; a tag glob (``*``, ``v1.*``)
  expands over the repository's tags; ``repo@digest`` is copied untagged.
* :class:`~ferry.jobs.spec.RepositoryTags`: the tags fully matching a regex.
* :class:`~ferry.jobs.spec.ArchiveContents`: every ``repo:tag`` (or untagged ``repo@digest``)
  an archive's ``index.json`` names, under a prefix after remapping.

Referrer fallback tags (``sha256-<hex>``) are never artifacts. More than ``max_artifacts``
requests is an error naming the limit.

May be imported by ``ferry/jobs`` and the faces.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from ferry.errors import UsageError
from ferry.jobs.spec import ArchiveContents, Artifacts, ExportRefs, RepositoryTags, Selection
from ferry.oci.layout import REF_NAME
from ferry.oci.referrers import is_fallback_tag
from ferry.patterns import MatchBudget, TagPattern
from ferry.plan import CopyRequest
from ferry.reference import ArtifactSpec, is_valid_repository
from ferry.transports.archive import ArchiveSource
from ferry.transports.base import Source


def expand(selection: Sequence[Selection], source: Source, max_artifacts: int,
           skipped: list[str] | None = None) -> list[CopyRequest]:
    """Every request the selection names, in order; UsageError past ``max_artifacts``.

    A repository without a matching tag is an error, unless it is one of several and ``skipped``
    is given: then it is reported there and the others go on (``ferry copy A B --all-tags``)."""
    requests: list[CopyRequest] = []
    for item in selection:
        if isinstance(item, Artifacts):
            requests += item.requests
        elif isinstance(item, ExportRefs):
            for ref in item.refs:
                requests += _export_ref(source, ref)
                _check_limit(requests, max_artifacts)
        elif isinstance(item, RepositoryTags):
            try:
                requests += _repository_tags(source, item)
            except UsageError as exc:
                if skipped is None or len(selection) == 1:
                    raise
                skipped.append(str(exc))
        elif isinstance(item, ArchiveContents):
            if not isinstance(source, ArchiveSource):
                raise UsageError("an archive's contents can only be selected from an archive source")
            requests += import_requests(source, item.prefix.strip("/"), list(item.remap))
        _check_limit(requests, max_artifacts)
    return requests


def _check_limit(requests: list[CopyRequest], max_artifacts: int) -> None:
    if len(requests) > max_artifacts:
        raise UsageError(f"the job names more than {max_artifacts} artifacts (at least {len(requests)}), the "
                         f"limit set by --max-artifacts {max_artifacts} or the app setting FERRY_MAX_ARTIFACTS; "
                         "raise it or split the job")


def _export_ref(source: Source, ref: str) -> list[CopyRequest]:
    spec = ArtifactSpec.parse(ref, allow_glob=True)
    if spec.digest:
        tags: tuple[str, ...] = (spec.tag,) if spec.tag else ()
        return [CopyRequest(spec.repository, spec.digest, spec.repository, tags)]
    assert spec.tag is not None
    if spec.is_glob:
        matched = sorted(t for t in source.list_tags(spec.repository)
                         if fnmatch.fnmatchcase(t, spec.tag) and not is_fallback_tag(t))
        if not matched:
            raise UsageError(f"{ref!r}: no tag of {spec.repository} on {source.name} matches {spec.tag!r}")
        return [CopyRequest(spec.repository, t, spec.repository, (t,)) for t in matched]
    return [CopyRequest(spec.repository, spec.tag, spec.repository, (spec.tag,))]


def _repository_tags(source: Source, item: RepositoryTags) -> list[CopyRequest]:
    pattern = TagPattern.compile(item.pattern, "tag pattern") if item.pattern is not None else None
    listed = source.list_tags(item.source_repository)
    budget = MatchBudget(len(listed))
    tags = sorted(t for t in listed if (pattern is None or pattern.fullmatch(t, budget)) and not is_fallback_tag(t))
    if not tags:
        raise UsageError(f"no tag of {source.name}/{item.source_repository} matches"
                         + (f" {item.pattern!r}" if item.pattern else ""))
    return [CopyRequest(item.source_repository, t, item.target_repository, (t,) if item.keep_tags else ())
            for t in tags]


def parse_remaps(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``FROM=TO`` pairs of repository paths."""
    remaps = []
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not is_valid_repository(old) or not is_valid_repository(new):
            raise UsageError(f"--remap {value!r} must be FROM=TO with two repository paths")
        remaps.append((old, new))
    return tuple(remaps)


def target_repository(repository: str, prefix: str, remaps: Sequence[tuple[str, str]]) -> str:
    for old, new in remaps:
        if repository == old or repository.startswith(old + "/"):
            repository = new + repository[len(old):]
            break
    target = f"{prefix}/{repository}" if prefix else repository
    if not is_valid_repository(target):
        raise UsageError(f"target repository {target!r} is not valid")
    return target


def import_requests(source: ArchiveSource, prefix: str, remaps: Sequence[tuple[str, str]]) -> list[CopyRequest]:
    """One request per ``repo:tag`` (or untagged ``repo@digest``) named in the archive's index.json."""
    requests = []
    for entry in source.index.entries:
        name = entry.annotations.get(REF_NAME, "")
        if "@" in name:
            repository, _, digest = name.partition("@")
            requests.append(CopyRequest(repository, digest, target_repository(repository, prefix, remaps), ()))
            continue
        repository, sep, tag = name.rpartition(":")
        if not sep or "/" in tag or not repository:
            raise UsageError(f"{source.name}: index.json entry {name or entry.digest!r} is not named repo:tag")
        if is_fallback_tag(tag):
            continue
        requests.append(CopyRequest(repository, tag, target_repository(repository, prefix, remaps), (tag,)))
    if not requests:
        raise UsageError(f"{source.name} names no artifact (no repo:tag in index.json)")
    return requests
