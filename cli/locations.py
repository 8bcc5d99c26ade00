"""Parse the CLI's SRC/DST arguments into job endpoints, and build the command's job environment."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from ferry.azure.claims import MemoryClaimStore
from ferry.blobcache import BlobLocationCache, default_cache_path
from ferry.errors import InvalidReferenceError, UsageError
from ferry.jobs.endpoints import JobEnvironment
from ferry.jobs.spec import Endpoint, LayoutEndpoint, RegistryEndpoint
from ferry.reference import Reference
from ferry.registry.credentials import TOKEN_USERNAME, Credentials
from ferry.settings import Settings


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


def blob_cache() -> BlobLocationCache:
    """The blob location cache at :func:`default_cache_path`, opened once per path per process."""
    path = default_cache_path()
    if str(path) not in _caches:
        _caches[str(path)] = BlobLocationCache(path)
    return _caches[str(path)]


_caches: dict[str, BlobLocationCache] = {}


def add_password_stdin(parser: argparse.ArgumentParser, *sides: str) -> None:
    """``--password-stdin`` (source) and/or ``--dest-password-stdin``, as ``docker login`` has: the
    password is read from standard input, so it stays out of ``ps`` and shell history."""
    if "source" in sides:
        parser.add_argument("--password-stdin", action="store_true",
                            help="read the source password from stdin (with -u USER or --src-creds USER)")
    if "destination" in sides:
        parser.add_argument("--dest-password-stdin", action="store_true",
                            help="read the target password from stdin (with --dest-creds USER)")


def credentials_from(text: str | None, username: str | None, password: str | None, *, stdin: bool,
                     flags: str) -> Credentials | None:
    """Credentials from ``USER:PASS`` (``text``), from ``-u``/``-p``, or a user name and a password read
    from stdin; UsageError naming ``flags`` for a combination that does not fit."""
    if text is not None and (username or password):
        raise UsageError(f"give either {flags}, not both")
    if stdin:
        user = text if text is not None else username
        if not user or ":" in user or password:
            raise UsageError(f"with a password from stdin give only the user name ({flags.split(' or ')[0]} USER)")
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise UsageError("no password on stdin")
        return Credentials.from_user_pass(user, secret)
    if text is not None:
        return Credentials.parse(text)
    if username or password:
        return Credentials.from_user_pass(username, password)
    return None


def cli_environment(args: argparse.Namespace) -> JobEnvironment:
    """The job environment of one command: this process's settings, credentials kept in memory,
    the connection strings given, the blob location cache; given credentials are checked up front."""
    return JobEnvironment(settings=Settings.from_env(), claims=MemoryClaimStore(),
                          connection_strings=tuple(getattr(args, "connection_string", None) or ()),
                          cache=blob_cache(), check_credentials=True, upload_sessions=blob_cache())


def registry_endpoint(registry: str, credentials: Credentials | None, env: JobEnvironment, side: str,
                      args: argparse.Namespace, *, azure_ad: bool = False) -> RegistryEndpoint:
    """A registry endpoint; given credentials go to the in-memory claim ``cli/<side>``."""
    ref = None
    if credentials is not None and not credentials.is_anonymous:
        claim = ({"username": TOKEN_USERNAME, "password": credentials.identity_token} if credentials.identity_token
                 else {"username": credentials.username, "password": credentials.password})
        claim["registry"] = registry
        ref = env.claims.put_json(f"cli/{side}", claim)
    return RegistryEndpoint(registry, ref, insecure=registry in (args.insecure or ()), azure_ad=azure_ad)


def location_endpoint(location: Location, credentials: Credentials | None, env: JobEnvironment, side: str,
                      args: argparse.Namespace, *, azure_ad: bool = False) -> Endpoint:
    if location.kind == "oci":
        return LayoutEndpoint(location.registry)
    return registry_endpoint(location.registry, credentials, env, side, args, azure_ad=azure_ad)
