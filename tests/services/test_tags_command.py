"""``ferry tags`` against a real registry: an image pushed under a hundred tags (a SemVer grid, a
prerelease line, aliases, a Helm-style build tag) plus a signature, whose ``sha256-<hex>`` fallback
tag is listed by the registry and never selected. Expected selections are computed here, from the
tags as pushed, without Ferry's selection code."""

from __future__ import annotations

import io
import sys

import pytest

from ferry.sync.filters import TagFilter
from tests.harness import content as c
from tests.helpers import run_ferry

GRID = [(major, minor, patch) for major in range(3) for minor in range(10) for patch in range(3)]
EXTRA = ["v3.0.0", "3.1.0-rc.1", "3.1.0-rc.2", "1.2.3_build.7", "latest", "stable", "1.27"]
REPO = "t/tags-command"


def release(v: tuple[int, int, int]) -> str:
    return "{}.{}.{}".format(*v)


@pytest.fixture(scope="module")
def pushed(registry) -> dict:
    """The repository's tags as pushed, and the referrers fallback tag the signature added."""
    image = c.oci_image([c.random_layer(2_000, seed=91)], seed=91)
    tags = [release(v) for v in GRID] + EXTRA
    with c.registry_client(registry.url) as http:
        for tag in tags:
            c.push(registry.url, REPO, image, tag=tag, client=http)
        c.push_referrer(registry.url, REPO, c.referrer(image), client=http)
    return {"tags": tags, "fallback": c.referrers_tag(image.digest)}


def test_every_tag_but_the_referrers_fallback(registry, pushed, capsys) -> None:
    listed = c.list_tags(registry.url, REPO)
    assert pushed["fallback"] in listed and len(listed) == len(pushed["tags"]) + 1
    result = run_ferry(capsys, "tags", f"{registry.host}/{REPO}")
    assert result.code == 0, result.err
    assert result.out.splitlines() == sorted(pushed["tags"])  # "latest" is no version: lexical


def test_semver_exclude_and_latest_as_one_chain(registry, pushed, capsys) -> None:
    result = run_ferry(capsys, "tags", f"docker://{registry.host}/{REPO}", "--semver", "^1.2",
                       "--exclude", r".*\.0", "--latest", "4")
    assert result.code == 0, result.err
    in_range = sorted(v for v in GRID if v[0] == 1 and v[1:] >= (2, 0) and v[2] != 0)
    assert result.out.splitlines() == [release(v) for v in in_range[-4:]]  # 1.8.1 1.8.2 1.9.1 1.9.2
    assert result.err == ""


def test_prereleases_only_where_the_range_names_them(registry, pushed, capsys) -> None:
    named = run_ferry(capsys, "tags", f"{registry.host}/{REPO}", "--semver", ">=3.1.0-rc.1")
    assert named.out.splitlines() == ["3.1.0-rc.1", "3.1.0-rc.2"]
    plain = run_ferry(capsys, "tags", f"{registry.host}/{REPO}", "--semver", ">=3", "--include", "v.*|3.*")
    assert plain.out.splitlines() == ["v3.0.0"]


def test_json_gives_every_tag_its_verdict(registry, pushed, capsys) -> None:
    result = run_ferry(capsys, "tags", f"{registry.host}/{REPO}", "--include", r"1\..*", "--exclude", ".*_build.*",
                       "--latest", "2", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["repository"] == f"{registry.host}/{REPO}"
    assert data["filter"] == {"include": [r"1\..*"], "exclude": [".*_build.*"], "latest": 2}
    assert TagFilter.from_json(data["filter"]) == TagFilter((r"1\..*",), None, (".*_build.*",), 2)
    ones = sorted(t for t in pushed["tags"] if t.startswith("1.") and "_build" not in t)
    assert data["order"] == "lexical" and data["notVersions"] == ["1.27"]
    assert data["selected"] == ones[-2:] == ["1.9.1", "1.9.2"]
    stages = {r["tag"]: r["stage"] for r in data["rejected"]}
    assert stages[pushed["fallback"]] == "referrers" and stages["latest"] == "include"
    assert stages["1.2.3_build.7"] == "exclude" and stages["1.0.0"] == "latest"
    assert sorted([*data["selected"], *stages]) == sorted([*pushed["tags"], pushed["fallback"]])


def test_a_lexical_latest_over_versions_says_so(registry, pushed, capsys) -> None:
    result = run_ferry(capsys, "tags", f"{registry.host}/{REPO}", "--include", r"1\..*", "--latest", "1")
    assert result.out.splitlines() == ["1.9.2"]
    assert "--latest ordered lexically: '1.27' is not a SemVer version" in result.err


def test_a_repository_without_tags_selects_nothing(registry, capsys) -> None:
    result = run_ferry(capsys, "tags", f"{registry.host}/t/no-such-repository", "--latest", "3")
    assert result.code == 0 and result.out == ""
    assert "has no tags (or does not exist)" in result.err


def test_credentials_reach_a_registry_that_needs_them(auth_registry, content, capsys) -> None:
    user, password = auth_registry.username, auth_registry.password
    c.push(auth_registry.url, REPO, content["docker"], tag="2.0.0", auth=(user, password))
    c.push(auth_registry.url, REPO, content["docker"], tag="2.1.0", auth=(user, password))
    result = run_ferry(capsys, "tags", f"{auth_registry.host}/{REPO}", "--creds", f"{user}:{password}",
                       "--semver", "~2.0")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["2.0.0"]
    refused = run_ferry(capsys, "tags", f"{auth_registry.host}/{REPO}", "--creds", f"{user}:wrong")
    assert refused.code == 4 and "wrong" not in refused.err


def test_a_password_from_stdin(auth_registry, content, capsys, monkeypatch) -> None:
    c.push(auth_registry.url, REPO, content["docker"], tag="v9.0.0", auth=auth_registry.credentials)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{auth_registry.password}\n"))
    result = run_ferry(capsys, "tags", f"{auth_registry.host}/{REPO}", "-u", auth_registry.username,
                       "--password-stdin", "--semver", ">=9")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["v9.0.0"]
