"""Parse manifests and indexes just enough to walk the content graph.

Parsing never changes the bytes: callers keep ``raw`` and copy it verbatim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import IntegrityError, UnsupportedError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor


@dataclass(frozen=True)
class ParsedManifest:
    """The graph edges of one manifest or index.

    ``manifests`` are the children of an index; ``blobs`` are the config and layers of an image
    manifest, in order; ``subject`` is what this manifest refers to (referrers).
    """

    media_type: str
    manifests: tuple[Descriptor, ...] = ()
    blobs: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)


def detect_media_type(raw: bytes, declared: str | None = None) -> str:
    """The manifest's media type: the ``mediaType`` field, else the declared one, else by shape."""
    document = _load(raw)
    field_type = document.get("mediaType")
    if isinstance(field_type, str) and field_type:
        return field_type
    if declared and mt.is_manifest(declared.split(";")[0].strip()):
        return declared.split(";")[0].strip()
    if "manifests" in document:
        return mt.OCI_INDEX
    if "layers" in document or "config" in document:
        return mt.OCI_MANIFEST
    if document.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1
    raise UnsupportedError("cannot tell the media type of a manifest with neither 'manifests' nor 'layers'")


def parse_manifest(raw: bytes, media_type: str | None = None) -> ParsedManifest:
    """Parse ``raw`` (an image manifest or index of any supported type)."""
    document = _load(raw)
    kind = detect_media_type(raw, media_type)
    if kind in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedError("Docker schema 1 manifests are deprecated and not supported; push it as schema 2")
    subject = None
    if "subject" in document:
        subject = Descriptor.from_json(document["subject"], where="manifest subject")
    artifact_type = document.get("artifactType") if isinstance(document.get("artifactType"), str) else None
    found = document.get("annotations")
    annotations: dict[str, str] = dict(found) if isinstance(found, dict) else {}
    if "manifests" in document or mt.is_index(kind):
        children = document.get("manifests") or []
        if not isinstance(children, list):
            raise IntegrityError("index 'manifests' is not a list")
        return ParsedManifest(
            media_type=kind,
            manifests=tuple(Descriptor.from_json(c, where=f"index entry {i}") for i, c in enumerate(children)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    blobs: list[Descriptor] = []
    if "config" in document:
        blobs.append(Descriptor.from_json(document["config"], where="manifest config"))
    layers = document.get("layers") or []
    if not isinstance(layers, list):
        raise IntegrityError("manifest 'layers' is not a list")
    blobs.extend(Descriptor.from_json(layer, where=f"layer {i}") for i, layer in enumerate(layers))
    blobs.extend(Descriptor.from_json(b, where="artifact blob") for b in document.get("blobs") or [])
    if artifact_type is None and blobs and blobs[0].media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
        artifact_type = blobs[0].media_type if kind == mt.OCI_MANIFEST else None
    return ParsedManifest(
        media_type=kind, blobs=tuple(blobs), subject=subject, artifact_type=artifact_type,
        annotations=annotations,
    )


def _load(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise IntegrityError("manifest is not a JSON object")
    return document


def platform_string(platform: dict[str, Any] | None) -> str:
    """``os/arch[/variant]`` for a descriptor's platform, or ``unknown``."""
    if not platform:
        return "unknown"
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    if platform.get("variant"):
        text += f"/{platform['variant']}"
    return text


def build_index(descriptors: list[Descriptor], annotations: dict[str, str] | None = None) -> bytes:
    """Serialize a new OCI index authored by Ferry (referrers fallback, layouts)."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [d.to_json() for d in descriptors],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, separators=(",", ":")).encode()
