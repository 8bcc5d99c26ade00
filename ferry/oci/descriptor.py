"""OCI content descriptors and digest helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import IntegrityError, UnsupportedError
from ferry.reference import is_valid_digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hasher(digest: str) -> hashlib._Hash:
    """A hashlib object for the algorithm of ``digest`` (sha256 or sha512)."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise UnsupportedError(f"unsupported digest algorithm {algorithm!r} in {digest}")
    return hashlib.new(algorithm)


def verify_bytes(data: bytes, digest: str, *, what: str = "content") -> None:
    """Raise :class:`IntegrityError` unless ``data`` hashes to ``digest``."""
    hasher = new_hasher(digest)
    hasher.update(data)
    actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != digest:
        raise IntegrityError(f"digest mismatch for {what}: expected {digest}, got {actual}")


def verify_stream(chunks: Iterator[bytes], descriptor: Descriptor, *, what: str) -> Iterator[bytes]:
    """Pass ``chunks`` through; raise IntegrityError on excess, truncation or a digest mismatch.

    The error is raised while iterating, before the last chunk would let a consumer commit.
    """
    hasher = new_hasher(descriptor.digest)
    algorithm = descriptor.digest.split(":", 1)[0]
    size = 0
    pending: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > descriptor.size:
            raise IntegrityError(f"{what}: more bytes than the {descriptor.size} its descriptor says")
        hasher.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    if size != descriptor.size:
        raise IntegrityError(f"{what}: truncated, got {size} of {descriptor.size} bytes")
    actual = f"{algorithm}:{hasher.hexdigest()}"
    if actual != descriptor.digest:
        raise IntegrityError(f"digest mismatch for {what}: content hashes to {actual}, expected {descriptor.digest}")
    if pending is not None:
        yield pending


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor: what a manifest says about one piece of content.

    ``raw`` keeps the descriptor's original JSON object so that fields Ferry does not model
    (``platform``, ``annotations``, ``urls``, ``artifactType``...) survive untouched.
    """

    media_type: str
    digest: str
    size: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise IntegrityError(f"{where} is not a JSON object")
        media_type = obj.get("mediaType")
        digest = obj.get("digest")
        size = obj.get("size")
        if not isinstance(digest, str) or not is_valid_digest(digest):
            raise IntegrityError(f"{where} has an invalid digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise IntegrityError(f"{where} has an invalid size {size!r}")
        if not isinstance(media_type, str) or not media_type:
            raise IntegrityError(f"{where} has no mediaType")
        return cls(media_type=media_type, digest=digest, size=size, raw=dict(obj))

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, **extra: Any) -> Descriptor:
        digest = sha256_digest(data)
        raw = {"mediaType": media_type, "digest": digest, "size": len(data), **extra}
        return cls(media_type=media_type, digest=digest, size=len(data), raw=raw)

    def to_json(self) -> dict[str, Any]:
        obj = dict(self.raw)
        obj.update({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
        return obj

    @property
    def platform(self) -> dict[str, Any] | None:
        value = self.raw.get("platform")
        return value if isinstance(value, dict) else None

    @property
    def artifact_type(self) -> str | None:
        value = self.raw.get("artifactType")
        return value if isinstance(value, str) else None

    @property
    def annotations(self) -> dict[str, str]:
        value = self.raw.get("annotations")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def urls(self) -> list[str]:
        value = self.raw.get("urls")
        return [u for u in value if isinstance(u, str)] if isinstance(value, list) else []
