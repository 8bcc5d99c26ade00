"""Platform filters (``--platform``): an index is cut down to the platforms asked for; a single image
is checked against them by its config's os/architecture[/variant].

May be imported by the engine (:mod:`ferry.copy`).
"""

from __future__ import annotations

import json

from ferry.errors import FerryError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import build_index, parse_manifest, platform_string
from ferry.transports.base import Source


def select_platforms(
    source: Source, repository: str, root: Descriptor, raw: bytes, platforms: frozenset[str] | None
) -> tuple[Descriptor, bytes]:
    """Apply a platform filter to an index: one match is copied alone, several as a new index. A
    single image is checked against the filter by its config's os/architecture."""
    if not platforms:
        return root, raw
    if not mt.is_index(root.media_type):
        check_image_platform(source, repository, root, raw, platforms)
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


def check_image_platform(source: Source, repository: str, root: Descriptor, raw: bytes,
                          platforms: frozenset[str]) -> None:
    blobs = parse_manifest(raw, root.media_type).blobs
    config = blobs[0] if blobs else None
    if config is None or config.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG) or config.size > 1024 * 1024:
        return  # an artifact, not an image: it has no platform to check
    with source.open_blob(repository, config) as stream:
        data = json.loads(b"".join(stream))
    found = "/".join(str(data[k]) for k in ("os", "architecture", "variant") if data.get(k))
    if found not in platforms and found.rsplit("/", 1)[0] not in platforms and \
            "/".join(found.split("/")[:2]) not in platforms:
        raise FerryError(f"{repository}@{root.digest} is a single {found} image; it matches none of "
                         f"{sorted(platforms)}")
