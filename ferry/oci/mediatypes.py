"""Media types Ferry recognizes, grouped by role in the content graph."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYOUT_VERSION = "1.0.0"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER_NONDISTRIBUTABLE_PREFIX = "application/vnd.oci.image.layer.nondistributable."

DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_MANIFEST_TYPES

#: The Accept header Ferry sends for manifests: every type it can copy.
MANIFEST_ACCEPT = ", ".join(sorted(MANIFEST_TYPES))


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_TYPES


def is_non_distributable(media_type: str) -> bool:
    """Foreign layers that registries do not store; their bytes live at the descriptor's URLs."""
    return media_type == DOCKER_LAYER_FOREIGN or media_type.startswith(OCI_LAYER_NONDISTRIBUTABLE_PREFIX)
