"""Content for the gate's tests, built on ``tests/unit/memory.py``: images whose config carries Env
and Labels, and cosign-style signatures (as referrers or under ``sha256-<hex>.sig`` tags), signed
with keys made here by ``cryptography``."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.unit.memory import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Content, describe, sha256

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def configured_image(name: str, *, env: list[str] | None = None, labels: dict[str, str] | None = None,
                     platform: dict[str, str] | None = None, layers: int = 2, config_padding: int = 0,
                     annotations: dict[str, str] | None = None,
                     descriptor_annotations: dict[str, str] | None = None) -> Content:
    """An OCI image whose config has ``config.Env`` and ``config.Labels``; ``platform`` (and
    ``descriptor_annotations``) go on its descriptor, for an index, and the platform in the config too.
    ``annotations`` are the manifest's own; ``config_padding`` grows the config (for the cap)."""
    platform = platform or AMD64
    config: dict[str, Any] = {"architecture": platform["architecture"], "os": platform["os"],
                              "config": {"Env": env or [], "Labels": labels or {}},
                              "rootfs": {"type": "layers", "diff_ids": []}, "name": name}
    if "variant" in platform:
        config["variant"] = platform["variant"]
    if config_padding:
        config["padding"] = "x" * config_padding
    config_bytes = json.dumps(config).encode()
    layer_bytes = [f"{name}/layer{i}/".encode() * (5 + i) for i in range(layers)]
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                "config": describe(OCI_CONFIG, config_bytes).to_json(),
                                "layers": [describe(OCI_LAYER, b).to_json() for b in layer_bytes]}
    if annotations:
        document["annotations"] = annotations
    raw = json.dumps(document, indent=1).encode()
    extra: dict[str, Any] = {"annotations": descriptor_annotations} if descriptor_annotations else {}
    descriptor = describe(OCI_MANIFEST, raw, platform=platform, **extra)
    blobs = {sha256(b): b for b in [config_bytes, *layer_bytes]}
    return Content(descriptor, raw, ((descriptor, raw),), blobs)


def payload(digest: str, reference: str = "registry.example/app") -> bytes:
    """cosign's simple-signing payload for ``digest``."""
    return json.dumps({"critical": {"identity": {"docker-reference": reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}).encode()


def sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def public_pem(key: PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def cosign_signature(key: PrivateKey, signed_digest: str, *, subject: Content | None = None,
                     signature: bytes | None = None) -> Content:
    """A cosign signature manifest over ``signed_digest``: a referrer of ``subject`` when given (OCI 1.1
    mode), else a plain manifest for a ``sha256-<hex>.sig`` tag. ``signature`` overrides the real one."""
    body = payload(signed_digest)
    encoded = base64.b64encode(signature if signature is not None else sign(key, body)).decode()
    config = b'{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = describe(SIMPLE_SIGNING, body, annotations={"dev.cosignproject.cosign/signature": encoded})
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                "config": describe(OCI_CONFIG, config).to_json(), "layers": [layer.to_json()]}
    extra: dict[str, Any] = {}
    if subject is not None:
        document["artifactType"] = SIG_ARTIFACT
        document["subject"] = {"mediaType": subject.descriptor.media_type, "digest": subject.digest,
                               "size": subject.descriptor.size}
        extra["artifactType"] = SIG_ARTIFACT
    raw = json.dumps(document).encode()
    descriptor = describe(OCI_MANIFEST, raw, **extra)
    return Content(descriptor, raw, ((descriptor, raw),), {sha256(config): config, sha256(body): body})


def sig_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"
