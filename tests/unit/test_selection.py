"""Selections expanded into copy requests over an in-memory source; remaps and target repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.copy import copy_artifacts
from ferry.errors import UsageError
from ferry.jobs.selection import expand, import_requests, parse_remaps, target_repository
from ferry.jobs.spec import ArchiveContents, Artifacts, ExportRefs, RepositoryTags
from ferry.plan import CopyOptions, CopyRequest
from ferry.transports.archive import open_destination, open_source
from tests.unit.memory import MemorySource, image, referrer

TAGS = ["latest", "v1", "v1.1", "v1.2", "v2", "V3", "release-v1"]


@pytest.fixture
def source() -> MemorySource:
    source = MemorySource("mem")
    app = source.push("app", image("app"), *TAGS)
    signature = source.push("app", referrer(app))
    source.tag("app", "sha256-" + app.digest.split(":")[1], signature.digest)  # referrers fallback tag
    source.push("lib/tool", image("tool"), "2.0")
    return source


def requests(*items, max_artifacts: int = 100, source: MemorySource) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(r.source_repository, r.source_reference, r.target_repository, r.target_tags)
            for r in expand(items, source, max_artifacts)]


# --------------------------------------------------------------------------- ExportRefs


def test_bare_repository_means_latest(source: MemorySource) -> None:
    assert requests(ExportRefs(("app",)), source=source) == [("app", "latest", "app", ("latest",))]


def test_repository_and_tag(source: MemorySource) -> None:
    assert requests(ExportRefs(("lib/tool:2.0", "app:v1")), source=source) == [
        ("lib/tool", "2.0", "lib/tool", ("2.0",)), ("app", "v1", "app", ("v1",))]


@pytest.mark.parametrize(("glob", "tags"), [
    ("*", sorted(TAGS)),
    ("v1.*", ["v1.1", "v1.2"]),
    ("v?", ["v1", "v2"]),
    ("v[12]*", ["v1", "v1.1", "v1.2", "v2"]),
    ("*v1", ["release-v1", "v1"]),
    ("V*", ["V3"]),  # case-sensitive, as tags are
])
def test_tag_globs_expand_over_the_repository(source: MemorySource, glob: str, tags: list[str]) -> None:
    assert requests(ExportRefs((f"app:{glob}",)), source=source) == [("app", t, "app", (t,)) for t in tags]


def test_fallback_tags_are_never_selected(source: MemorySource) -> None:
    fallback = [t for t in source.list_tags("app") if t.startswith("sha256-")]
    assert len(fallback) == 1  # the fixture has one
    for item in (ExportRefs(("app:*",)), RepositoryTags("app", "app"), RepositoryTags("app", "app", ".*")):
        assert {r[1] for r in requests(item, source=source)} == set(TAGS), item
    for item in (ExportRefs(("app:sha256-*",)), RepositoryTags("app", "app", "sha256-[0-9a-f]+")):
        with pytest.raises(UsageError, match="no tag"):
            expand([item], source, 100)


def test_digest_is_copied_untagged(source: MemorySource) -> None:
    digest = source.tags["app"]["v1"]
    assert requests(ExportRefs((f"app@{digest}",)), source=source) == [("app", digest, "app", ())]
    assert requests(ExportRefs((f"app:v1@{digest}",)), source=source) == [("app", digest, "app", ("v1",))]


@pytest.mark.parametrize("ref", ["app:v9*", "nothing:*"])
def test_glob_without_match_names_the_repository(source: MemorySource, ref: str) -> None:
    repository = ref.split(":")[0]
    with pytest.raises(UsageError, match=f"no tag of {repository} on mem matches"):
        expand([ExportRefs((ref,))], source, 100)


def test_invalid_ref_is_a_usage_error(source: MemorySource) -> None:
    with pytest.raises(UsageError):
        expand([ExportRefs(("App:v1",))], source, 100)


# --------------------------------------------------------------------------- RepositoryTags


def test_pattern_must_match_the_whole_tag(source: MemorySource) -> None:
    assert requests(RepositoryTags("app", "mirror/app", "v1"), source=source) == [("app", "v1", "mirror/app", ("v1",))]
    assert [r[1] for r in requests(RepositoryTags("app", "a", r"v1(\.[0-9]+)?"), source=source)] == [
        "v1", "v1.1", "v1.2"]
    with pytest.raises(UsageError, match="no tag of mem/app matches '1'"):  # re.search would find "v1"
        expand([RepositoryTags("app", "a", "1")], source, 100)


def test_all_tags_and_untagged(source: MemorySource) -> None:
    assert [r[1] for r in requests(RepositoryTags("app", "m"), source=source)] == sorted(TAGS)
    assert {r[3] for r in requests(RepositoryTags("app", "m", keep_tags=False), source=source)} == {()}


def test_unknown_repository_names_it(source: MemorySource) -> None:
    with pytest.raises(UsageError, match="mem/ghost"):
        expand([RepositoryTags("ghost", "ghost")], source, 100)


# --------------------------------------------------------------------------- the whole selection


def test_items_expand_in_order(source: MemorySource) -> None:
    given = CopyRequest("x", "y", "z", ("t",))
    got = requests(ExportRefs(("app:v2",)), Artifacts((given,)), RepositoryTags("lib/tool", "t"), source=source)
    assert got == [("app", "v2", "app", ("v2",)), ("x", "y", "z", ("t",)), ("lib/tool", "2.0", "t", ("2.0",))]


@pytest.mark.parametrize("items", [
    (ExportRefs(("app:*",)),),
    (RepositoryTags("app", "app"),),
    (ExportRefs(("app:v1", "app:v2")), ExportRefs(("app:v1.*",))),
    (Artifacts(tuple(CopyRequest("a", str(i), "a") for i in range(4))),),
])
def test_more_than_max_artifacts_names_the_limit(source: MemorySource, items) -> None:
    with pytest.raises(UsageError, match=r"more than 3 artifacts.*FERRY_MAX_ARTIFACTS"):
        expand(items, source, 3)


def test_exactly_max_artifacts_is_allowed(source: MemorySource) -> None:
    assert len(expand([ExportRefs(("app:v*",))], source, 4)) == 4
    with pytest.raises(UsageError, match="more than 3"):
        expand([ExportRefs(("app:v*",))], source, 3)


def test_archive_contents_need_an_archive_source(source: MemorySource) -> None:
    with pytest.raises(UsageError, match="archive source"):
        expand([ArchiveContents()], source, 100)


# --------------------------------------------------------------------------- archives


@pytest.fixture
def archive(source: MemorySource, tmp_path: Path) -> Path:
    """A Ferry archive file holding app:v1 (with its signature), lib/tool:2.0 and lib/tool untagged."""
    path = tmp_path / "ferry.tar"
    digest = source.tags["lib/tool"]["2.0"]
    with open_destination(str(path)) as destination:
        report = copy_artifacts(source, destination, [
            CopyRequest("app", "v1", "app", ("v1",)), CopyRequest("lib/tool", "2.0", "lib/tool", ("2.0",)),
            CopyRequest("lib/tool", digest, "lib/tool/untagged", ())], CopyOptions())
    assert report.ok, report.failed
    return path


def test_import_requests_from_an_archive(archive: Path, source: MemorySource) -> None:
    digest = source.tags["lib/tool"]["2.0"]
    with open_source(str(archive)) as reader:
        got = sorted((r.source_repository, r.source_reference, r.target_repository, r.target_tags)
                     for r in import_requests(reader, "mirror", [("lib", "tools/lib")]))
        assert got == [("app", "v1", "mirror/app", ("v1",)),
                       ("lib/tool", "2.0", "mirror/tools/lib/tool", ("2.0",)),
                       ("lib/tool/untagged", digest, "mirror/tools/lib/tool/untagged", ())]
        # the archive's referrers fallback tag is bookkeeping, not an artifact
        assert any(e.annotations.get("org.opencontainers.image.ref.name", "").split(":")[-1].startswith("sha256-")
                   for e in reader.index.entries)
        selected = expand([ArchiveContents("/mirror/", (("lib", "tools/lib"),))], reader, 100)
        assert sorted(r.target_repository for r in selected) == [g[2] for g in got]
        with pytest.raises(UsageError, match="more than 2"):
            expand([ArchiveContents()], reader, 2)


# --------------------------------------------------------------------------- remaps and targets


def test_parse_remaps() -> None:
    assert parse_remaps(["lib=tools/lib", "a/b=c"]) == (("lib", "tools/lib"), ("a/b", "c"))
    assert parse_remaps([]) == ()


@pytest.mark.parametrize("value", ["lib", "=b", "a=", "", "../x=y", "a=../x", "a=/abs", "A=b", "a=B", "a=b=c",
                                   "a b=c", "a=b/", "a//b=c"])
def test_parse_remaps_refuses(value: str) -> None:
    with pytest.raises(UsageError, match="--remap"):
        parse_remaps([value])


@pytest.mark.parametrize(("repository", "prefix", "remaps", "expected"), [
    ("app", "", [], "app"),
    ("app", "mirror", [], "mirror/app"),
    ("lib/x", "", [("lib", "tools")], "tools/x"),
    ("lib", "m", [("lib", "tools")], "m/tools"),
    ("library/nginx", "", [("lib", "tools")], "library/nginx"),  # a remap matches whole path segments
    ("a/b", "", [("a", "x"), ("a/b", "y")], "x/b"),  # the first match wins
])
def test_target_repository(repository: str, prefix: str, remaps, expected: str) -> None:
    assert target_repository(repository, prefix, remaps) == expected


@pytest.mark.parametrize(("repository", "prefix", "remaps"), [
    ("../x", "", []),
    ("x", "..", []),
    ("x", "Mirror", []),
    ("App", "", []),
    ("", "", []),
    ("x", "/", []),
    ("a", "", [("a", "../b")]),
    ("a/b", "", [("a", "")]),
])
def test_target_repository_refuses_hostile_names(repository: str, prefix: str, remaps) -> None:
    with pytest.raises(UsageError, match="is not valid"):
        target_repository(repository, prefix, remaps)


@pytest.mark.parametrize("call", [lambda: parse_remaps(["a=b\n"]), lambda: target_repository("x\n", "", [])],
                         ids=["remap", "repository"])
def test_a_trailing_newline_is_not_a_repository(call) -> None:
    with pytest.raises(UsageError):
        call()
