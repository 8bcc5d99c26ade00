"""The distribution grammar, matched whole: names, tags and digests that only look valid.

Every check of ``ferry.reference`` must match the *whole* text: ``re.match`` with ``$`` lets a
trailing newline through, and ``\\w`` lets non-ASCII letters through. Each rejection is an
InvalidReferenceError (a UsageError, exit 2) whose message names the bad part.
"""

from __future__ import annotations

import pytest

from ferry.errors import InvalidReferenceError, UsageError
from ferry.reference import (
    ArtifactSpec,
    Reference,
    is_valid_digest,
    is_valid_repository,
    is_valid_tag,
)

pytestmark = [pytest.mark.bad_input, pytest.mark.usefixtures("no_network")]

A64 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "c" * 128


# --- the predicates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "v1\n",           # re.match with $ accepts a trailing newline
        "v1\r\n",
        "\n",
        "v1\x00",
        "\x00",
        "vé",             # \w is Unicode by default
        "é",
        "版本",
        "v1\u200b",       # zero-width space
        "\uff561",       # full-width letter v
        "v" * 129,
        "",
        "-v1",
        ".v1",
        "v1 ",
        "v1/x",
        "v1:x",
        "v1@x",
    ],
)
def test_bad_tags_are_rejected(tag: str) -> None:
    assert not is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["v1", "_x", "1.0-rc_2", "A" * 128, "latest", "V1.2.3"])
def test_good_tags_pass(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize(
    "repository",
    [
        "app\n",
        "team/app\n",
        "team\n/app",
        "app\x00",
        "apé",
        "app/ü",
        "App",
        "team/App",
        "..",
        "../app",
        "team/../app",
        "team/./app",
        "a..b",
        ".app",
        "app.",
        "app_",
        "a___b",
        "/app",
        "app/",
        "a//b",
        "a b",
        "a" * 256,
    ],
)
def test_bad_repositories_are_rejected(repository: str) -> None:
    assert not is_valid_repository(repository)


@pytest.mark.parametrize("repository", ["app", "team/app", "a.b/c_d/e__f/g-h/i--j", "a0/b1", "a" * 255])
def test_good_repositories_pass(repository: str) -> None:
    assert is_valid_repository(repository)


@pytest.mark.parametrize(
    "digest",
    [
        A64 + "\n",
        SHA512 + "\n",
        A64[:-1] + "é",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "a" * 128,
        "sha512:" + "c" * 64,
        "SHA256:" + "a" * 64,
        "md5:" + "a" * 32,
        "sha256" + "a" * 64,
        A64 + "\x00",
        "sha256:" + "٣" * 64,  # Arabic-Indic digit three: a Unicode \d, not hex
    ],
)
def test_bad_digests_are_rejected(digest: str) -> None:
    assert not is_valid_digest(digest)


@pytest.mark.parametrize("digest", [A64, SHA512, "sha256:" + "0123456789abcdef" * 4])
def test_good_digests_pass(digest: str) -> None:
    assert is_valid_digest(digest)


# --- Reference.parse: the message names the bad part ------------------------------------------


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("reg.io/x:v1\n", r"'reg.io/x:v1\n': starts or ends with whitespace"),  # a trailing newline ...
        ("reg.io/x\n:v1", r"'x\n'"),          # ... on the repository, before the tag
        ("reg.io\n/x:v1", r"'reg.io\n'"),     # ... on the registry host
        ("reg.io:5000\n/x", r"'reg.io:5000\n'"),
        (f"reg.io/x@{A64}\n", A64),
        ("reg.io/x:vé", "'vé'"),
        ("reg.io/x:版本", "'版本'"),
        ("reg.io/x:v\x001", r"'v\x001'"),
        ("reg.io/apé:1", "'apé'"),
        ("reg.io/x:" + "t" * 129, "t" * 129),
        ("reg.io/Team/app:1", "'Team/app'"),
        ("reg.io/../app:1", "'../app'"),
        ("reg.io/team/..:1", "'team/..'"),
        ("reg.io/a..b:1", "'a..b'"),
        ("reg.io/x@sha256:" + "A" * 64, "sha256:" + "A" * 64),
        ("rég.io/x:1", "'rég.io'"),
    ],
)
def test_reference_parse_rejects_and_names_the_part(text: str, offending: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Reference.parse(text)
    message = str(info.value)
    assert offending in message, message
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("reg.io/x:v1\n", "whitespace"),
        ("reg.io/x:v\n1", "tag"),
        ("reg.io/x\n:v1", "repository"),
        ("reg.io\n/x:v1", "registry"),
        ("reg.io/x:vé", "tag"),
        ("reg.io/apé:1", "repository"),
    ],
)
def test_reference_message_says_which_part(text: str, part: str) -> None:
    with pytest.raises(InvalidReferenceError, match=rf"\b{part}\b"):
        Reference.parse(text)


# --- ArtifactSpec.parse: pipelines, archives, the API -----------------------------------------


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("team/app:v1\n", r"'v1\n'"),
        ("team/app\n", r"'team/app\n'"),
        ("team/app\n:v1", r"'team/app\n'"),
        (f"team/app@{A64}\n", repr(A64 + "\n")),
        ("team/app:vé", "'vé'"),
        ("team/app:v\x00", r"'v\x00'"),
        ("team/apé:v1", "'team/apé'"),
        ("team/app:" + "t" * 129, "t" * 129),
        ("Team/app:v1", "'Team/app'"),
        ("../app:v1", "'../app'"),
        ("team/../app", "'team/../app'"),
        ("team/app:", "''"),
    ],
)
def test_artifact_spec_rejects_and_names_the_part(text: str, offending: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        ArtifactSpec.parse(text)
    assert offending in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["team/app:v1.*\n", "team/app:vé*", "team/app:v\x00*", "team/app:" + "*" * 129])
def test_artifact_spec_globs_are_ascii_and_whole(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        ArtifactSpec.parse(text, allow_glob=True)


def test_valid_forms_still_parse() -> None:
    assert Reference.parse(f"reg.io:5000/a.b/c__d:V1_2-x@{A64}") == Reference("reg.io:5000", "a.b/c__d", "V1_2-x", A64)
    assert ArtifactSpec.parse("team/app:v1.*", allow_glob=True).is_glob
    assert ArtifactSpec.parse(f"team/app@{SHA512}").digest == SHA512
