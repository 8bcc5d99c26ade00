"""ACR's ImportImageParameters (``POST importImage``), parsed once into a typed model.

May be imported by ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.errors import InvalidReferenceError
from ferry.reference import ArtifactSpec, is_valid_repository
from ferry.transfer.fields import (
    Credentials,
    bad,
    choice,
    json_object,
    parse_credentials,
    registry_host,
    string,
    string_list,
)

IMPORT_MODES = ("NoForce", "Force")


@dataclass
class ImportImage:
    """ACR's ImportImageParameters, with targets made explicit (``repo:tag`` each)."""

    registry_uri: str | None
    resource_id: str | None
    source_image: str
    credentials: Credentials | None
    target_tags: list[str]
    untagged_target_repositories: list[str]
    mode: str


def parse_import_image(body: Any) -> ImportImage:
    """ImportImageParameters. Without targets, the source image's repository and tag are the target."""
    raw = json_object(body, "body")
    source = json_object(raw.get("source"), "source")
    registry_uri = source.get("registryUri")
    resource_id = string(source.get("resourceId"), "source.resourceId", required=False)
    if registry_uri is None and resource_id is None:
        raise bad("source.registryUri", "one of source.registryUri and source.resourceId is required")
    if registry_uri is not None and resource_id is not None:
        raise bad("source.resourceId", "give source.registryUri or source.resourceId, not both")
    host = registry_host(registry_uri, "source.registryUri") if registry_uri is not None else None
    image = string(source.get("sourceImage"), "source.sourceImage", max_length=512)
    assert image is not None
    try:
        spec = ArtifactSpec.parse(image)
    except InvalidReferenceError as exc:
        raise bad("source.sourceImage", str(exc)) from exc
    credentials = parse_credentials(source.get("credentials"), "source.credentials")
    mode = choice(raw.get("mode"), "mode", IMPORT_MODES, "NoForce")
    tags: list[str] = []
    for i, text in enumerate(string_list(raw.get("targetTags"), "targetTags")):
        try:
            target = ArtifactSpec.parse(text)
        except InvalidReferenceError as exc:
            raise bad(f"targetTags[{i}]", str(exc)) from exc
        if target.digest:
            raise bad(f"targetTags[{i}]", "must be repo[:tag], not a digest")
        explicit = ":" in text
        tags.append(f"{target.repository}:{target.tag if explicit else (spec.tag or 'latest')}")
    untagged = string_list(raw.get("untaggedTargetRepositories"), "untaggedTargetRepositories")
    for i, repo in enumerate(untagged):
        if not is_valid_repository(repo):
            raise bad(f"untaggedTargetRepositories[{i}]", f"{repo!r} is not a repository name")
    if not tags and not untagged:
        if spec.tag and not spec.digest:
            tags = [f"{spec.repository}:{spec.tag}"]
        else:
            untagged = [spec.repository]
    return ImportImage(registry_uri=host, resource_id=resource_id, source_image=image, credentials=credentials,
                       target_tags=tags, untagged_target_repositories=untagged, mode=mode)

