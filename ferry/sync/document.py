"""The candidate document: one JSON document per artifact, built from a walked plan before promotion.

Every gate policy (:mod:`ferry.sync.policies`) is evaluated on this document, Rego policies
included (it is their ``input``), and an external validator will receive it. It is built from
the :class:`~ferry.plan.CopyPlan` (the exact digests the copy would write, after any platform
filter) plus the image configs, read from the Source with a size cap. Every key is always
present; what the artifact lacks is ``null``, ``[]`` or ``{}``.

Schema ``ferry.candidate/v1``::

    {"schema": "ferry.candidate/v1",
     "digest": "sha256:...",                # the root's digest: what is gated, and what is promoted
     "source": {"repository": "library/node", "reference": "15-alpine"},
     "target": {"repository": "base/node", "tags": ["15-alpine"]},
     "root": {"digest", "mediaType", "size", "artifactType", "annotations": {}},
     "index": null | {"manifests": [        # the root index's entries, as it lists them
         {"digest", "mediaType", "size", "platform": "linux/arm64/v8" | null, "annotations": {}}]},
     "platforms": ["linux/amd64", ...],     # sorted; attestation and unknown/unknown entries left out
     "manifests": [                         # every image manifest of the artifact, the root itself for a
         {"digest", "mediaType", "size",    # single image; referrers are not in this list
          "platform": "linux/amd64" | null, # the index entry's, else the config's os/architecture/variant
          "attestation": false,             # buildx attestation manifests (vnd.docker.reference.type)
          "artifactType": str | null, "annotations": {},
          "config": {"digest", "mediaType", "size", "annotations"} | null,
          "layers": [{"digest", "mediaType", "size", "annotations": {}}]}],
     "configs": [                           # each OCI or Docker image config, read and parsed
         {"digest", "manifest": "sha256:...", "platform": "linux/amd64" | null, "attestation": false,
          "os": str | null, "architecture": str | null, "variant": str | null,
          "env": {"NAME": "value"},         # config.Env as a map; the last entry of a name wins
          "labels": {"key": "value"},       # config.Labels
          "content": {...}}],               # the whole config JSON as stored (history, rootfs, ...)
     "size": {"total": n,                   # bytes of every blob the copy carries (referrers' too)
              "image": n,                   # of the artifact's own configs and layers
              "referrers": n,               # of the blobs only its referrers use
              "manifests": n},              # of every manifest and index
     "referrers": [{"digest", "mediaType", "size", "artifactType": str | null, "annotations": {},
                    "subject": "sha256:...", "layers": [...]}],
     "signatures": null | [                 # collected when a policy needs them (signature, rego)
         {"via": "referrer" | "tag", "manifest": "sha256:...", "tag": "sha256-<hex>.sig" | null,
          "layer": "sha256:...", "signature": base64 | null, "payload": base64 | null,
          "claim": {"digest", "reference", "type"} | null,   # what the payload says, unverified
          "problem": str | null}]}

Configs larger than :data:`CONFIG_LIMIT` (1 MiB; real ones are a few KiB) are refused unread,
and so are signature payloads. Only image configs (OCI, Docker) are read; other artifacts'
configs (a Helm chart's) appear in ``manifests`` but not in ``configs``.

May be imported by ``ferry/sync`` and the faces (the sync orchestration sends it to external validators).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ferry.errors import FerryError
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.manifest import parse_manifest, platform_string
from ferry.plan import ArtifactPlan, CopyPlan
from ferry.sync.signatures import (
    BlobReader,
    SignatureTagReader,
    is_signature_manifest,
    signature_entries,
    signature_tag,
)
from ferry.transports.base import Source

SCHEMA = "ferry.candidate/v1"
CONFIG_LIMIT = 1024 * 1024
IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})
ATTESTATION = ("vnd.docker.reference.type", "attestation-manifest")
_MAX_DEPTH = 8

Manifests = dict[str, tuple[Descriptor, bytes]]


def candidate_document(plan: CopyPlan, artifact_index: int, source: Source, *, signatures: bool = False,
                       signature_tag_reader: SignatureTagReader | None = None,
                       config_limit: int = CONFIG_LIMIT) -> dict[str, Any]:
    """The document of ``plan.artifacts[artifact_index]`` (schema in the module docstring).

    Reads each image config (and, with ``signatures``, each signature payload, and the
    ``sha256-<hex>.sig`` tag through ``signature_tag_reader`` when given) from ``source``.
    Raises FerryError when the artifact cannot be described (too-large config, corrupt JSON,
    a missing blob); its ``transient`` flag says whether trying again may help.
    """
    artifact = plan.artifacts[artifact_index]
    root = artifact.root
    if root is None:
        raise FerryError(f"{artifact.request.source_label} was not walked: it has no root manifest")
    manifests: Manifests = {d.digest: (d, raw) for d, raw in artifact.manifests}
    manifests[root.digest] = (root, artifact.root_raw)
    read = blob_reader(source, artifact.request.source_repository, config_limit)
    images = [_manifest_entry(d, raw, platform) for d, raw, platform in _own_images(root, manifests)]
    configs = [_config_entry(entry, config, read) for entry, config in images if config is not None
               and config.media_type in IMAGE_CONFIGS]
    entries = [entry for entry, _ in images]
    parsed_root = parse_manifest(artifact.root_raw, root.media_type)
    return {
        "schema": SCHEMA,
        "digest": root.digest,
        "source": {"repository": artifact.request.source_repository,
                   "reference": artifact.request.source_reference},
        "target": {"repository": artifact.request.target_repository, "tags": list(artifact.request.target_tags)},
        "root": {**_summary(root), "artifactType": root.artifact_type or parsed_root.artifact_type,
                 "annotations": parsed_root.annotations},
        "index": {"manifests": [{**_summary(d), "platform": _platform(d)} for d in parsed_root.manifests]}
        if parsed_root.is_index else None,
        "platforms": sorted({e["platform"] for e in entries if e["platform"] and not e["attestation"]
                             and not e["platform"].startswith("unknown")}),
        "manifests": entries,
        "configs": configs,
        "size": _sizes(artifact, images, manifests),
        "referrers": [_referrer_entry(subject, manifests[ref.digest]) for subject, ref in artifact.referrer_links
                      if ref.digest in manifests],
        "signatures": _signatures(artifact, manifests, read, signature_tag_reader) if signatures else None,
    }


def blob_reader(source: Source, repository: str, limit: int) -> BlobReader:
    """Reads small blobs (configs, payloads) whole, verified by the Source, refusing any past ``limit``."""

    def read(descriptor: Descriptor, what: str) -> bytes:
        too_big = FerryError(f"{what} {descriptor.digest} is {max(descriptor.size, limit + 1):,} bytes, more than "
                             f"the {limit:,} bytes Ferry reads to judge an artifact")
        if descriptor.size > limit:
            raise too_big
        data = bytearray()
        with source.open_blob(repository, descriptor) as stream:
            for chunk in stream:
                data += chunk
                if len(data) > limit:
                    raise too_big
        return bytes(data)

    return read


Image = tuple[Descriptor, bytes, str | None]


def _own_images(root: Descriptor, manifests: Manifests) -> Iterator[Image]:
    """Every image manifest below ``root`` through index entries (not referrers), with its platform."""
    seen: set[str] = set()

    def visit(descriptor: Descriptor, platform: str | None, depth: int) -> Iterator[Image]:
        if descriptor.digest in seen:
            return
        seen.add(descriptor.digest)
        if descriptor.digest not in manifests:
            raise FerryError(f"manifest {descriptor.digest} is missing from the plan")
        raw = manifests[descriptor.digest][1]
        parsed = parse_manifest(raw, descriptor.media_type)
        if not parsed.is_index:
            yield descriptor, raw, platform
            return
        if depth >= _MAX_DEPTH:
            raise FerryError(f"index {descriptor.digest} nests indexes deeper than {_MAX_DEPTH} levels")
        for child in parsed.manifests:
            yield from visit(child, _platform(child) or platform, depth + 1)

    yield from visit(root, _platform(root), 0)


def _platform(descriptor: Descriptor) -> str | None:
    return platform_string(descriptor.platform) if descriptor.platform else None


def _summary(descriptor: Descriptor) -> dict[str, Any]:
    return {"digest": descriptor.digest, "mediaType": descriptor.media_type, "size": descriptor.size,
            "annotations": descriptor.annotations}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FerryError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FerryError(f"{what} is not a JSON object")
    return document


def _manifest_entry(descriptor: Descriptor, raw: bytes,
                    platform: str | None) -> tuple[dict[str, Any], Descriptor | None]:
    parsed = parse_manifest(raw, descriptor.media_type)
    document = _json_object(raw, f"manifest {descriptor.digest}")
    config = Descriptor.from_json(document["config"], where="manifest config") if "config" in document else None
    layers = [Descriptor.from_json(layer, where=f"layer {i}") for i, layer in enumerate(document.get("layers") or [])]
    entry = {
        "digest": descriptor.digest, "mediaType": parsed.media_type, "size": descriptor.size,
        "platform": platform,
        "attestation": descriptor.annotations.get(ATTESTATION[0]) == ATTESTATION[1],
        "artifactType": parsed.artifact_type, "annotations": parsed.annotations,
        "config": _summary(config) if config else None,
        "layers": [_summary(layer) for layer in layers],
    }
    return entry, config


def _config_entry(entry: dict[str, Any], config: Descriptor, read: BlobReader) -> dict[str, Any]:
    """Read and parse the image config of manifest ``entry``; sets the entry's platform if unknown."""
    what = f"{entry['platform'] or 'the image'}'s config"
    content = _json_object(read(config, what), f"{what} {config.digest}")
    inner = _object(content.get("config"))
    env: dict[str, str | None] = {}
    for item in inner.get("Env") or []:
        if isinstance(item, str):
            name, sep, value = item.partition("=")
            env[name] = value if sep else None
    labels = _object(inner.get("Labels"))
    fields = {key: content.get(key) if isinstance(content.get(key), str) else None
              for key in ("os", "architecture", "variant")}
    if entry["platform"] is None and fields["os"] and fields["architecture"]:
        entry["platform"] = platform_string(fields)
    return {"digest": config.digest, "manifest": entry["digest"], "platform": entry["platform"],
            "attestation": entry["attestation"], **fields, "env": env, "labels": labels, "content": content}


def _sizes(artifact: ArtifactPlan, images: list[tuple[dict[str, Any], Descriptor | None]],
           manifests: Manifests) -> dict[str, int]:
    own = {layer["digest"] for entry, _ in images for layer in entry["layers"]}
    own |= {config.digest for _, config in images if config is not None}
    total = sum(blob.size for blob in artifact.blobs.values())
    image = sum(blob.size for digest, blob in artifact.blobs.items() if digest in own)
    return {"total": total, "image": image, "referrers": total - image,
            "manifests": sum(len(raw) for _, raw in manifests.values())}


def _referrer_entry(subject: Descriptor, manifest: tuple[Descriptor, bytes]) -> dict[str, Any]:
    descriptor, raw = manifest
    parsed = parse_manifest(raw, descriptor.media_type)
    layers = _json_object(raw, f"referrer {descriptor.digest}").get("layers") or []
    return {**_summary(descriptor), "artifactType": descriptor.artifact_type or parsed.artifact_type,
            "annotations": parsed.annotations, "subject": subject.digest,
            "layers": [_summary(Descriptor.from_json(layer, where=f"layer {i}")) for i, layer in enumerate(layers)]}


def _signatures(artifact: ArtifactPlan, manifests: Manifests, read: BlobReader,
                tag_reader: SignatureTagReader | None) -> list[dict[str, Any]]:
    """Signature entries from the referrers in the plan and from the root's ``.sig`` tag."""
    entries: list[dict[str, Any]] = []
    for _, referrer in artifact.referrer_links:
        descriptor, raw = manifests.get(referrer.digest, (referrer, b""))
        if raw and is_signature_manifest(descriptor, raw):
            entries += signature_entries(descriptor, raw, read, via="referrer")
    root = artifact.root
    found = tag_reader(artifact.request.source_repository, root.digest) if tag_reader and root else None
    if found is not None and root is not None:
        entries += signature_entries(found[0], found[1], read, via="tag", tag=signature_tag(root.digest))
    return entries
