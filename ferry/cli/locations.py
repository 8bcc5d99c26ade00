"""Parse the CLI's SRC/DST arguments into transports, with credentials resolved."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.blobcache import BlobLocationCache, default_cache_path
from ferry.errors import InvalidReferenceError, UsageError
from ferry.reference import Reference, is_valid_digest
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials


@dataclass(frozen=True)
class Location:
    """A parsed SRC or DST: a registry reference, or an OCI layout ``oci:DIR[:repo[:tag]]``.

    ``tag_given`` tells whether the user wrote a tag (docker's implied ``latest`` does not count).
    ``repository`` is None when only a registry host (or a bare layout) was given.
    """

    text: str  # what the user wrote
    kind: str  # "registry" | "oci"
    registry: str  # host[:port] for registries, the directory for layouts
    repository: str | None
    tag: str | None
    digest: str | None
    tag_given: bool

    @property
    def reference(self) -> str | None:
        return self.digest or self.tag


def parse_location(text: str) -> Location:
    """Parse ``[docker://]REF``, a bare ``HOST[:PORT]``, or ``oci:DIR[:REPO[:TAG|@DIGEST]]``."""
    if text.startswith("oci:"):
        body = text[4:]
        directory, _, ref = body.partition(":")
        if not directory:
            raise UsageError(f"{text!r}: oci: needs a directory, as oci:DIR[:REPO:TAG]")
        if not ref:
            return Location(text, "oci", directory, None, None, None, False)
        try:
            parsed = Reference.parse(ref, default_registry="layout.invalid")
        except InvalidReferenceError as exc:
            raise UsageError(f"{text!r}: {exc}") from exc
        tag_given = _has_explicit_tag(ref)
        return Location(text, "oci", directory, parsed.repository, parsed.tag if tag_given else None, parsed.digest,
                        tag_given)
    bare = text.removeprefix("docker://")
    if "/" not in bare and ("." in bare or ":" in bare or bare == "localhost") and "@" not in bare:
        return Location(text, "registry", bare, None, None, None, False)
    parsed = Reference.parse(bare)
    tag_given = _has_explicit_tag(bare)
    return Location(text, "registry", parsed.registry, parsed.repository,
                    parsed.tag if (tag_given or not parsed.digest) else None, parsed.digest, tag_given)


def _has_explicit_tag(text: str) -> bool:
    name = text.split("@", 1)[0]
    return ":" in name.rsplit("/", 1)[-1]


def make_client(registry: str, credentials: Credentials, insecure_hosts: list[str], parallel: int) -> RegistryClient:
    return RegistryClient(registry, credentials, insecure=registry in insecure_hosts,
                          max_connections=max(8, parallel * 2))


_caches: dict[str, BlobLocationCache] = {}


def blob_cache() -> BlobLocationCache:
    """The blob location cache at :func:`default_cache_path`, opened once per path per process."""
    path = default_cache_path()
    if str(path) not in _caches:
        _caches[str(path)] = BlobLocationCache(path)
    return _caches[str(path)]


def validate_digest(value: str) -> str:
    if not is_valid_digest(value):
        raise UsageError(f"{value!r} is not a digest (sha256:<64 hex>)")
    return value
