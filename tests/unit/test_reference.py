"""Pure tests of reference parsing (docker's rules), loopback detection and secret redaction."""

from __future__ import annotations

import pytest

from ferry.errors import InvalidReferenceError, UsageError
from ferry.redact import redact
from ferry.reference import ArtifactSpec, Reference, is_loopback

A64 = "sha256:" + "a" * 64
B64 = "sha256:" + "b" * 64
SHA512 = "sha512:" + "c" * 128


# --- Reference.parse: valid forms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        # Docker Hub: official images get library/, the default tag is latest.
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("docker.io/bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
        ("docker://alpine:3", "docker.io", "library/alpine", "3", None),
        # Digests: no implied tag; tag and digest together keep both.
        (f"nginx@{A64}", "docker.io", "library/nginx", None, A64),
        (f"ghcr.io/o/r:v1@{B64}", "ghcr.io", "o/r", "v1", B64),
        (f"quay.io/x/y@{SHA512}", "quay.io", "x/y", None, SHA512),
        # Hosts with ports, localhost, IPv4 and IPv6 literals.
        ("myregistry.azurecr.io/team/app:2.0", "myregistry.azurecr.io", "team/app", "2.0", None),
        ("registry.example.com:5000/a/b/c:t", "registry.example.com:5000", "a/b/c", "t", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None),
        (f"127.0.0.1:5000/x@{A64}", "127.0.0.1:5000", "x", None, A64),
        ("10.1.2.3:443/ns/img:latest", "10.1.2.3:443", "ns/img", "latest", None),
        ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None),
        # A first component with an upper-case letter is a registry host, as in docker.
        ("Registry/foo", "Registry", "foo", "latest", None),
        ("MyHost/team/app:v2", "MyHost", "team/app", "v2", None),
        # Separators docker allows inside components; tags with dots, dashes and underscores.
        ("reg.io/a.b/c__d/e-f--g:v1.2_3-rc", "reg.io", "a.b/c__d/e-f--g", "v1.2_3-rc", None),
        ("reg.io/x:" + "t" * 128, "reg.io", "x", "t" * 128, None),
        ("reg.io/x:_private", "reg.io", "x", "_private", None),
    ],
)
def test_parse_valid(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_docker_hub_endpoint_is_registry_1() -> None:
    ref = Reference.parse("nginx")
    assert ref.registry == "docker.io"
    assert ref.endpoint == "registry-1.docker.io"
    assert str(ref) == "docker.io/library/nginx:latest"
    assert Reference.parse("index.docker.io/x/y").endpoint == "registry-1.docker.io"


def test_other_registries_are_their_own_endpoint() -> None:
    assert Reference.parse("127.0.0.1:5000/x").endpoint == "127.0.0.1:5000"
    assert Reference.parse("myregistry.azurecr.io/x").endpoint == "myregistry.azurecr.io"


def test_identifier_prefers_digest_and_str_round_trips() -> None:
    ref = Reference.parse(f"ghcr.io/o/r:v1@{B64}")
    assert ref.identifier == B64
    assert str(ref) == f"ghcr.io/o/r:v1@{B64}"
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse("ghcr.io/o/r").identifier == "latest"
    assert ref.with_tag("v2") == Reference("ghcr.io", "o/r", "v2", None)
    assert ref.with_digest(A64).digest == A64


def test_default_registry_replaces_docker_hub_without_library() -> None:
    ref = Reference.parse("app:1", default_registry="127.0.0.1:5000")
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "app", "1")


# --- Reference.parse: invalid forms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("", "''"),
        ("   ", "'   '"),
        (" nginx", "' nginx'"),
        ("nginx ", "'nginx '"),
        ("ngi nx", "ngi nx"),
        ("reg.io/my app:1", "my app"),
        ("Nginx", "Nginx"),  # no registry part: docker.io/library/Nginx, upper-case repository
        ("reg.io/Team/app:1", "Team/app"),
        ("localhost:5000/a/B", "a/B"),
        ("reg.io/a//b", "a//b"),
        ("reg.io/-a", "-a"),
        ("reg.io/x:bad tag", "bad tag"),
        ("reg.io/x:-dash", "-dash"),
        ("reg.io/x:.dot", ".dot"),
        ("reg.io/x:", "reg.io/x:"),
        ("reg.io/x:" + "t" * 129, "t" * 129),
        ("reg.io/x@sha256:abc", "sha256:abc"),
        ("reg.io/x@sha256:" + "A" * 64, "sha256:" + "A" * 64),
        ("reg.io/x@md5:" + "a" * 32, "md5:" + "a" * 32),
        ("reg.io/x@", "reg.io/x@"),
        ("reg_io:5000/x", "reg_io:5000"),
        ("reg.io:port/x", "reg.io:port"),
    ],
)
def test_parse_invalid_names_the_text(text: str, offending: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Reference.parse(text)
    assert offending in str(info.value)
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2


def test_repository_longer_than_255_is_rejected() -> None:
    name = "/".join(["abcdefghij"] * 24)  # 263 characters of valid components
    with pytest.raises(InvalidReferenceError, match="abcdefghij"):
        Reference.parse(f"reg.io/{name}")
    assert Reference.parse(f"reg.io/{name[:255].rstrip('/')}").registry == "reg.io"


# --- ArtifactSpec.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("hello-world", "hello-world", "latest", None),
        ("team/app:v1", "team/app", "v1", None),
        (f"team/app@{A64}", "team/app", None, A64),
        (f"team/app:v1@{A64}", "team/app", "v1", A64),
        ("a.b/c_d:1.0-rc", "a.b/c_d", "1.0-rc", None),
    ],
)
def test_artifact_spec_valid(text: str, repository: str, tag: str | None, digest: str | None) -> None:
    spec = ArtifactSpec.parse(text)
    assert (spec.repository, spec.tag, spec.digest) == (repository, tag, digest)
    assert not spec.is_glob
    assert ArtifactSpec.parse(str(spec)) == spec


def test_artifact_spec_glob_only_when_allowed() -> None:
    with pytest.raises(InvalidReferenceError, match=r"v1\.\*"):
        ArtifactSpec.parse("team/app:v1.*")
    spec = ArtifactSpec.parse("team/app:v1.*", allow_glob=True)
    assert (spec.repository, spec.tag, spec.is_glob) == ("team/app", "v1.*", True)
    assert ArtifactSpec.parse("team/app:release-?", allow_glob=True).is_glob


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("Team/app", "Team/app"),
        ("team/app:bad tag", "bad tag"),
        ("team/app@sha256:1234", "sha256:1234"),
        ("", "''"),
        ("team app", "team app"),
        ("reg.io:5000/team/app", "reg.io:5000/team/app"),  # a registry does not belong here
    ],
)
def test_artifact_spec_invalid_names_the_text(text: str, offending: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        ArtifactSpec.parse(text)
    assert offending in str(info.value)


# --- is_loopback ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST:5000", True),
        ("localhost:5000", True),
        ("registry.localhost:8080", True),
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.8.9.10:80", True),
        ("[::1]:5000", True),
        ("[::1]", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("192.168.1.1", False),
        ("0.0.0.0:5000", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io:5000", False),
        ("myregistry.azurecr.io", False),
        ("docker.io", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


# --- redact -----------------------------------------------------------------------------------

SAS_SIG = "AbC%2Bd%2FeF0123456789xyz%3D"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmZXJyeSIsImFjY2VzcyI6W119.c2lnbmF0dXJlLWJ5dGVz"


def test_redact_sas_url_keeps_everything_but_the_signature() -> None:
    url = ("https://acct.blob.core.windows.net/transfer/export.tar?sv=2022-11-02&sp=rl"
           f"&se=2030-01-01T00%3A00%3A00Z&sig={SAS_SIG}")
    out = redact(f"GET {url} failed")
    assert SAS_SIG not in out
    assert "sig=REDACTED" in out
    assert "acct.blob.core.windows.net/transfer/export.tar" in out and "sv=2022-11-02" in out and "sp=rl" in out
    assert out.endswith(" failed")


def test_redact_signature_in_the_middle_of_a_query() -> None:
    out = redact(f"https://a.blob.core.windows.net/c/b?sig={SAS_SIG}&sv=2022-11-02")
    assert SAS_SIG not in out and "&sv=2022-11-02" in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("Authorization: Bearer opaque-token_123456", "opaque-token_123456"),
        ("authorization: bearer opaque-token_123456", "opaque-token_123456"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ],
)
def test_redact_authorization_headers(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "REDACTED" in out
    assert out.lower().startswith("authorization: ")


def test_redact_basic_auth_in_url() -> None:
    out = redact("cannot reach https://alice:s3cr3t-P4ss@registry.example.com/v2/team/app/manifests/v1")
    assert "s3cr3t-P4ss" not in out and "alice" not in out
    assert "registry.example.com/v2/team/app/manifests/v1" in out
    out = redact("http://bob:pw%40x@127.0.0.1:5000/v2/")
    assert "pw%40x" not in out and "127.0.0.1:5000/v2/" in out


def test_redact_bare_jwt_anywhere() -> None:
    out = redact(f"the token server returned {JWT} for scope repository:x:pull")
    assert JWT not in out
    assert "eyJ" not in out
    assert "REDACTED" in out
    assert out.endswith("for scope repository:x:pull")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"password": "hunter2hunter2", "user": "bob"}', "hunter2hunter2"),
        ("grant_type=refresh_token&refresh_token=r3fr3sh-t0k3n&service=x", "r3fr3sh-t0k3n"),
        ("?access_token=acc3ss-t0k3n&scope=repository", "acc3ss-t0k3n"),
        ('{"identitytoken": "id-t0k3n-v4lue"}', "id-t0k3n-v4lue"),
        ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=bXlrZXk9PQ==;EndpointSuffix=x",
         "bXlrZXk9PQ=="),
    ],
)
def test_redact_other_secrets(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "REDACTED" in out


@pytest.mark.parametrize("text", [
    "source.credentials.password: required when credentials are given",
    "properties.target.credentials.password: must be a string",
    "the token: expired at 12:00",
])
def test_redact_keeps_messages_about_secret_fields_readable(text: str) -> None:
    assert redact(text) == text


def test_redact_leaves_ordinary_text_alone() -> None:
    text = f"copied 127.0.0.1:5000/team/app:v1 -> reg.io/team/app:v1 {A64} (3 blobs, 1.2 MiB)"
    assert redact(text) == text
