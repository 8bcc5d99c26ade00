"""Cosign-style signatures: where they are found, how they are read, how a public key verifies them.

The formats, as cosign writes them (read from sigstore/cosign's ``pkg/oci/static`` and
``pkg/cosign``, and sigstore's simple-signing payload):

* A signature manifest is an image manifest found either as a **referrer** of the signed
  manifest (artifactType ``application/vnd.dev.cosign.artifact.sig.v1+json``, cosign's OCI 1.1
  mode) or under the **tag** ``sha256-<hex>.sig`` in the same repository (cosign's default).
* Each of its layers of media type ``application/vnd.dev.cosign.simplesigning.v1+json`` is one
  signature. The layer's blob is the *payload*::

      {"critical": {"identity": {"docker-reference": "registry/repo"},
                    "image": {"docker-manifest-digest": "sha256:..."},
                    "type": "cosign container image signature"},
       "optional": {...}}

  and the layer's annotation ``dev.cosignproject.cosign/signature`` is the base64 signature
  over the payload's exact bytes.

Verification is what ``cosign verify --key`` does offline, with the ``cryptography`` package:
ECDSA (DER signature, SHA-256; cosign's keys are P-256), RSA PKCS#1 v1.5 with SHA-256, or
Ed25519, and the payload's ``docker-manifest-digest`` must equal the candidate's digest. Not
checked here: transparency-log bundles (Rekor), keyless certificates (Fulcio), RFC 3161
timestamps, attestations (``.att``).

The limit of ``.sig`` tags: they are not referrers, so the plan's referrer walk does not see
them and the copy does not carry them. The gate reads them through a :data:`SignatureTagReader`
(:func:`read_signature_tag` reads them from the plan's Source); a sync that wants them at the
target must copy that tag too.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ferry.errors import FerryError, NotFoundError
from ferry.oci.descriptor import Descriptor
from ferry.transports.base import Source

COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
#: (repository, digest) -> the manifest tagged ``sha256-<hex>.sig`` (descriptor, raw bytes), or None.
SignatureTagReader = Callable[[str, str], tuple[Descriptor, bytes] | None]
#: (descriptor, what it is) -> the blob's verified bytes, refused past a size cap.
BlobReader = Callable[[Descriptor, str], bytes]


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of ``digest``: ``sha256:abc...`` -> ``sha256-abc....sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def read_signature_tag(source: Source) -> SignatureTagReader:
    """A reader of ``repository:sha256-<hex>.sig`` from ``source`` (None when that tag is absent)."""

    def read(repository: str, digest: str) -> tuple[Descriptor, bytes] | None:
        try:
            descriptor = source.resolve(repository, signature_tag(digest))
        except NotFoundError:
            return None
        return descriptor, source.fetch_manifest(repository, descriptor)

    return read


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _layers(raw: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    layers = document.get("layers") if isinstance(document, dict) else None
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def is_signature_manifest(descriptor: Descriptor, raw: bytes) -> bool:
    """Whether the manifest carries cosign signatures (by artifactType, or a simple-signing layer)."""
    if descriptor.artifact_type == COSIGN_SIGNATURE_ARTIFACT:
        return True
    return any(layer.get("mediaType") == SIMPLE_SIGNING for layer in _layers(raw))


def signature_entries(manifest: Descriptor, raw: bytes, read: BlobReader, *, via: str,
                      tag: str | None = None) -> list[dict[str, Any]]:
    """One document entry per simple-signing layer of ``manifest`` (payload read through ``read``).

    A payload that cannot be read for a permanent reason (too large, corrupt) becomes the entry's
    ``problem``; transient failures propagate.
    """
    entries = []
    for layer in _layers(raw):
        if layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        annotations = _object(layer.get("annotations"))
        entry: dict[str, Any] = {"via": via, "manifest": manifest.digest, "tag": tag,
                                 "layer": layer.get("digest"), "signature": annotations.get(SIGNATURE_ANNOTATION),
                                 "payload": None, "claim": None, "problem": None}
        try:
            payload = read(Descriptor.from_json(layer, where="signature layer"), "signature payload")
        except FerryError as exc:
            if exc.transient:
                raise
            entry["problem"] = f"payload unreadable: {exc}"
        else:
            entry["payload"] = base64.b64encode(payload).decode()
            entry["claim"], entry["problem"] = _claim(payload)
        entries.append(entry)
    return entries


def _claim(payload: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """What the payload claims (unverified): the signed digest, the reference and the type."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "payload is not JSON"
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict):
        return None, "payload has no 'critical' object (not a simple-signing payload)"
    image, identity = _object(critical.get("image")), _object(critical.get("identity"))
    return {"digest": image.get("docker-manifest-digest"), "reference": identity.get("docker-reference"),
            "type": critical.get("type")}, None


def load_public_key(pem: str) -> PublicKey:
    """The key in ``pem`` (PEM SubjectPublicKeyInfo); ValueError saying why not."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"a {type(key).__name__}; Ferry verifies ECDSA, RSA and Ed25519 keys")
    return key


def key_fingerprint(key: PublicKey) -> str:
    """A short name for a key in messages: SHA-256 of its DER SubjectPublicKeyInfo, 16 hex digits."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def _verify_bytes(key: PublicKey, signature: bytes, payload: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        key.verify(signature, payload)


def verify_entry(key: PublicKey, entry: dict[str, Any], digest: str) -> str | None:
    """None when ``entry`` is a signature by ``key`` over ``digest``; else what is wrong with it."""
    if entry.get("problem"):
        return str(entry["problem"])
    encoded = entry.get("signature")
    if not isinstance(encoded, str) or not encoded:
        return f"no {SIGNATURE_ANNOTATION} annotation"
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "the signature annotation is not base64"
    try:
        _verify_bytes(key, signature, base64.b64decode(entry["payload"]))
    except (InvalidSignature, ValueError):
        return "does not verify with this key"
    claimed = (entry.get("claim") or {}).get("digest")
    if claimed != digest:
        return f"a valid signature, but of {claimed}, not of this candidate"
    return None


def check_signatures(key: PublicKey, entries: list[dict[str, Any]], digest: str) -> str | None:
    """None when one of ``entries`` is a valid signature by ``key`` over ``digest``; else a reason
    naming what was found and why each failed."""
    fingerprint = key_fingerprint(key)
    if not entries:
        return (f"no cosign signature of {digest} was found (looked at its referrers and the "
                f"{signature_tag(digest)} tag); a signature by key {fingerprint} is required")
    problems = []
    for entry in entries:
        problem = verify_entry(key, entry, digest)
        if problem is None:
            return None
        where = f"tag {entry['tag']}" if entry.get("tag") else f"referrer {entry['manifest']}"
        problems.append(f"{where} layer {entry.get('layer')}: {problem}")
    return (f"none of the {len(entries)} cosign signature(s) found is a valid signature of {digest} by key "
            f"{fingerprint} ({'; '.join(problems)})")
