"""Which artifacts an export or import covers: expanding REFs, and naming targets on import."""

from __future__ import annotations

import fnmatch

from ferry.copy import CopyRequest
from ferry.errors import NotFoundError, UsageError
from ferry.oci.layout import REF_NAME
from ferry.reference import ArtifactSpec, is_valid_repository
from ferry.transports.archive import ArchiveSource
from ferry.transports.base import Source
from ferry.transports.layout import is_fallback_tag
from ferry.transports.registry import RegistryDestination


def export_requests(source: Source, refs: list[str], max_artifacts: int) -> tuple[str, list[CopyRequest]]:
    """The registry and one request per artifact: ``repo`` means ``latest``; a tag glob or ``*``
    expands over the repository's tags; ``repo@digest`` is exported untagged."""
    registries: set[str] = set()
    requests: list[CopyRequest] = []
    for ref in refs:
        host, _, rest = ref.removeprefix("docker://").partition("/")
        if not rest or not ("." in host or ":" in host or host == "localhost"):
            raise UsageError(f"REF {ref!r} must be HOST/repo[:tag|:GLOB|@digest]")
        registries.add(host)
        spec = ArtifactSpec.parse(rest, allow_glob=True)
        if spec.digest:
            tags: tuple[str, ...] = (spec.tag,) if spec.tag else ()
            requests.append(CopyRequest(spec.repository, spec.digest, spec.repository, tags))
        elif spec.is_glob:
            assert spec.tag is not None
            matched = sorted(t for t in source.list_tags(spec.repository)
                             if fnmatch.fnmatchcase(t, spec.tag) and not is_fallback_tag(t))
            if not matched:
                raise UsageError(f"REF {ref!r}: no tag of {spec.repository} matches {spec.tag!r}")
            requests += [CopyRequest(spec.repository, t, spec.repository, (t,)) for t in matched]
        else:
            assert spec.tag is not None
            requests.append(CopyRequest(spec.repository, spec.tag, spec.repository, (spec.tag,)))
        if len(requests) > max_artifacts:
            raise UsageError(f"the export names more than --max-artifacts {max_artifacts} artifacts "
                             f"(at least {len(requests)}); raise the limit or split the export")
    if len(registries) != 1:
        raise UsageError(f"every REF must come from one registry; got {', '.join(sorted(registries))}")
    return registries.pop(), requests


def parse_remaps(values: list[str]) -> list[tuple[str, str]]:
    remaps = []
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not is_valid_repository(old) or not is_valid_repository(new):
            raise UsageError(f"--remap {value!r} must be FROM=TO with two repository paths")
        remaps.append((old, new))
    return remaps


def target_repository(repository: str, prefix: str, remaps: list[tuple[str, str]]) -> str:
    for old, new in remaps:
        if repository == old or repository.startswith(old + "/"):
            repository = new + repository[len(old):]
            break
    target = f"{prefix}/{repository}" if prefix else repository
    if not is_valid_repository(target):
        raise UsageError(f"target repository {target!r} is not valid")
    return target


def import_requests(source: ArchiveSource, prefix: str, remaps: list[tuple[str, str]]) -> list[CopyRequest]:
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


def verify_imported(destination: RegistryDestination, source: ArchiveSource, requests: list[CopyRequest]) -> None:
    """Raise unless every request's tag (or untagged root) is present in the target as in the archive."""
    for request in requests:
        expected = source.resolve(request.source_repository, request.source_reference)
        for tag in request.target_tags or (expected.digest,):
            found = destination.client.head_manifest(request.target_repository, tag)
            if found is None or found.digest != expected.digest:
                raise NotFoundError(f"{request.target_repository}:{tag} is not {expected.digest} in the target; "
                                    "the archive was kept")
