"""Parse and normalize image references the way docker does.

``Reference.parse("nginx")`` gives ``docker.io/library/nginx:latest``. The registry part is
recognized when the first path component contains ``.`` or ``:``, is ``localhost``, or has an
upper-case letter. ``docker.io`` (and ``index.docker.io``) is served at ``registry-1.docker.io``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from ferry.errors import InvalidReferenceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DEFAULT_TAG = "latest"

# The distribution grammar (github.com/distribution/reference), ASCII only and always matched
# whole with ``fullmatch``: ``re.match`` with ``$`` would let a trailing newline through, and
# ``\w`` would let any Unicode letter or digit through.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
#: Tag globs of ArtifactSpec (``allow_glob``): tag characters plus ``* ? [ ] !``.
_TAG_GLOB_RE = re.compile(r"[A-Za-z0-9_.*?\[\]!-]{1,128}")
#: Ferry verifies sha256 and sha512 only, so only those are valid: lower-case hex of their length.
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
MAX_REPOSITORY_LENGTH = 255


def is_valid_digest(value: str) -> bool:
    return bool(_DIGEST_RE.fullmatch(value))


def is_valid_tag(value: str) -> bool:
    return bool(_TAG_RE.fullmatch(value))


def is_valid_repository(value: str) -> bool:
    return len(value) <= MAX_REPOSITORY_LENGTH and bool(_REPOSITORY_RE.fullmatch(value))


def _host_without_port(registry: str) -> str:
    if registry.startswith("["):
        return registry[1 : registry.index("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback(registry: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 or ::1 hosts, with or without a port."""
    host = _host_without_port(registry).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_for(registry: str) -> str:
    """The host that serves the Distribution API for a registry name."""
    return DOCKER_HUB_ENDPOINT if registry in (DOCKER_HUB, "index.docker.io") else registry


@dataclass(frozen=True)
class Reference:
    """A fully-qualified reference. At least one of ``tag`` and ``digest`` is set after parsing."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_registry: str | None = None) -> Reference:
        """Parse ``[registry/]repository[:tag][@digest]``; the default tag is ``latest``.

        Without a registry part, ``default_registry`` is used, else Docker Hub (with ``library/``
        for single-component names). Raises :class:`InvalidReferenceError` naming the text.
        """
        original = text
        if not text:
            raise InvalidReferenceError(f"invalid reference {original!r}: empty")
        if text != text.strip():
            raise InvalidReferenceError(
                f"invalid reference {original!r}: starts or ends with whitespace (a space or line break)")
        for scheme in ("docker://", "oci://"):
            if text.startswith(scheme):
                text = text[len(scheme) :]
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not is_valid_digest(digest):
                raise InvalidReferenceError(
                    f"invalid reference {original!r}: digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>"
                )
        registry, remainder = _split_registry(text)
        tag: str | None = None
        last_slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        if colon > last_slash:
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not is_valid_tag(tag):
                raise InvalidReferenceError(
                    f"invalid reference {original!r}: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
                )
        if registry is None:
            registry = default_registry or DOCKER_HUB
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in remainder:
            remainder = f"library/{remainder}"
        if not is_valid_repository(remainder):
            raise InvalidReferenceError(
                f"invalid reference {original!r}: repository {remainder!r} must be lower-case "
                "path components of [a-z0-9] separated by '.', '_', '__' or '-'"
            )
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=remainder, tag=tag, digest=digest)

    @property
    def endpoint(self) -> str:
        """The host:port that serves this registry's Distribution API."""
        return endpoint_for(self.registry)

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_registry(text: str) -> tuple[str | None, str]:
    slash = text.find("/")
    if slash == -1:
        return None, text
    first = text[:slash]
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        if not _HOST_RE.fullmatch(first):
            raise InvalidReferenceError(f"invalid reference {text!r}: registry {first!r} is not a valid host[:port]")
        return first, text[slash + 1 :]
    return None, text


@dataclass(frozen=True)
class ArtifactSpec:
    """An artifact named inside one registry: ``repo``, ``repo:tag``, ``repo:GLOB`` or ``repo@digest``.

    Used by pipelines and archives, where the registry is given elsewhere. A bare repository
    means ``latest``. ``tag`` may contain ``*``/``?`` globs when ``allow_glob`` was set.
    """

    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, allow_glob: bool = False) -> ArtifactSpec:
        original = text
        digest = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not is_valid_digest(digest):
                raise InvalidReferenceError(f"invalid artifact {original!r}: bad digest {digest!r}")
        tag = None
        if ":" in text:
            text, tag = text.rsplit(":", 1)
            glob_ok = allow_glob and _TAG_GLOB_RE.fullmatch(tag)
            if not (is_valid_tag(tag) or glob_ok):
                raise InvalidReferenceError(f"invalid artifact {original!r}: bad tag {tag!r}")
        if not is_valid_repository(text):
            raise InvalidReferenceError(f"invalid artifact {original!r}: bad repository {text!r}")
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(repository=text, tag=tag, digest=digest)

    @property
    def is_glob(self) -> bool:
        return self.tag is not None and any(ch in self.tag for ch in "*?[")

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
