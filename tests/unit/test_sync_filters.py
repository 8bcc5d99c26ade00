"""The tag selection chain: stages in order, reasons, JSON, hostile input, and its properties."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry.errors import UsageError
from ferry.sync.filters import MAX_PATTERN_LENGTH, MAX_PATTERNS, FilterFieldError, TagFilter, nested_repetition
from ferry.sync.versions import parse_range, parse_tag_version, version_key

FALLBACK = "sha256-" + "ab" * 32
TAGS = ["1.0.0", "1.2.0", "v1.2.5", "1.2.5_build.1", "1.3.0-rc.1", "1.10.0", "2.0.0", "2.0.0-beta.1",
        "1.27", "latest", "stable", FALLBACK]


def verdicts(chain: TagFilter, tags=TAGS) -> dict[str, str]:
    return {r.tag: r.stage for r in chain.evaluate(tags).rejected}


# --------------------------------------------------------------------------- the chain


def test_the_empty_filter_takes_every_tag_but_referrer_bookkeeping() -> None:
    result = TagFilter().evaluate(TAGS)
    assert set(result.selected) == set(TAGS) - {FALLBACK}
    assert [(r.tag, r.stage) for r in result.rejected] == [(FALLBACK, "referrers")]
    assert list(result.selected) == sorted(result.selected)  # not all versions: lexical


def test_include_matches_the_whole_tag() -> None:
    assert TagFilter(include=(r"1\.2",)).select(["1.2", "1.25", "11.2", "1.2.0"]) == ["1.2"]
    assert TagFilter(include=(r"v?1\.2\..*", "latest")).select(TAGS) == ["1.2.0", "1.2.5_build.1", "latest", "v1.2.5"]


def test_semver_takes_versions_in_range_and_says_why_others_are_out() -> None:
    result = TagFilter(semver="^1.2").evaluate(TAGS)
    assert result.selected == ("1.2.0", "1.2.5_build.1", "v1.2.5", "1.10.0")  # precedence, ties by text
    reasons = {r.tag: r.reason for r in result.rejected}
    assert reasons["1.0.0"] == "outside range '^1.2'"
    assert reasons["1.3.0-rc.1"] == "a prerelease, which range '^1.2' does not name"
    assert reasons["1.27"].startswith("not a SemVer version")
    assert reasons[FALLBACK].startswith("a referrers fallback tag")


def test_include_and_semver_together_must_both_hold() -> None:
    assert TagFilter(include=("v.*",), semver="^1").select(TAGS) == ["v1.2.5"]


def test_exclude_runs_after_include_and_semver() -> None:
    result = TagFilter(semver=">=1.2 <3", exclude=(r".*_build\..*", r"2\..*")).evaluate(TAGS)
    assert result.selected == ("1.2.0", "v1.2.5", "1.10.0")
    assert verdicts(TagFilter(semver=">=1.2 <3", exclude=(r".*_build\..*",)))["1.2.5_build.1"] == "exclude"
    assert verdicts(TagFilter(include=("nothing",), exclude=("1.0.0",)))["1.0.0"] == "include"


def test_latest_takes_the_greatest_by_semver_when_all_candidates_are_versions() -> None:
    result = TagFilter(include=(r"v?\d+\.\d+\.\d+",), latest=2).evaluate(TAGS)
    assert result.order == "semver"
    assert result.selected == ("1.10.0", "2.0.0")  # 1.10.0 > 1.2.x by precedence, not by text
    assert verdicts(TagFilter(include=(r"v?\d+\.\d+\.\d+",), latest=2))["v1.2.5"] == "latest"


def test_latest_is_lexical_over_all_candidates_when_one_is_not_a_version() -> None:
    result = TagFilter(include=(r"1\..*",), exclude=(".*-rc.*",), latest=3).evaluate(TAGS)
    assert result.order == "lexical" and result.not_versions == ("1.27",)
    assert result.selected == ("1.2.0", "1.2.5_build.1", "1.27")  # "1.2..." > "1.10.0" in code points


def test_latest_larger_than_the_candidates_takes_them_all() -> None:
    assert TagFilter(semver="^2", latest=50).select(TAGS) == ["2.0.0"]
    assert TagFilter(include=("none",), latest=1).select(TAGS) == []


def test_prereleases_are_in_when_the_range_names_them() -> None:
    assert TagFilter(semver=">=2.0.0-0").select(TAGS) == ["2.0.0-beta.1", "2.0.0"]
    assert TagFilter(semver=">=1.3.0-rc.1, <1.4").select(TAGS) == ["1.3.0-rc.1"]


def test_select_ignores_input_order_and_repetition() -> None:
    shuffled = TAGS * 2
    random.Random(4).shuffle(shuffled)
    chain = TagFilter(semver="*", latest=3)
    assert chain.select(shuffled) == chain.select(TAGS) == ["v1.2.5", "1.10.0", "2.0.0"]  # ties: by text


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("chain", [
    TagFilter(), TagFilter(include=("a.*", "b")), TagFilter(semver="^1.4", latest=3),
    TagFilter(include=("v.*",), semver=">=1.2, <2", exclude=(".*-rc.*",), latest=1),
])
def test_json_round_trip(chain: TagFilter) -> None:
    data = chain.to_json()
    assert TagFilter.from_json(data, "properties.tags") == chain
    assert set(data) <= {"include", "semver", "exclude", "latest"}


def test_json_leaves_out_unset_fields() -> None:
    assert TagFilter(semver="^1", latest=2).to_json() == {"semver": "^1", "latest": 2}
    assert TagFilter.from_json(None) == TagFilter() == TagFilter.from_json({})


@pytest.mark.parametrize(("data", "message"), [
    ({"include": ["ok", "("]}, r"^properties\.tags\.include\[1\]: '\(' is not a valid regular expression"),
    ({"exclude": ["(a+)+"]}, r"^properties\.tags\.exclude\[0\]: .*exponential time"),
    ({"semver": "^1.2.3.4"}, r"^properties\.tags\.semver: '\^1\.2\.3\.4' is not a version range"),
    ({"latest": 0}, r"^properties\.tags\.latest: must be a whole number of at least 1"),
    ({"latest": True}, r"^properties\.tags\.latest: must be a whole number"),
    ({"latest": "3"}, r"^properties\.tags\.latest: must be a whole number"),
    ({"latest": 2.5}, r"^properties\.tags\.latest: must be a whole number"),
    ({"include": "v.*"}, r"^properties\.tags\.include: must be a list of strings"),
    ({"include": [1]}, r"^properties\.tags\.include: must be a list of strings"),
    ({"semver": 5}, r"^properties\.tags\.semver: must be a string"),
    ({"Latest": 1}, r"^properties\.tags\.Latest: unknown field"),
    ([], r"^properties\.tags: must be a JSON object"),
])
def test_json_errors_name_the_field_by_path(data, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        TagFilter.from_json(data, "properties.tags")


def test_json_errors_without_a_path_name_the_field_alone() -> None:
    with pytest.raises(UsageError, match=r"^include\[0\]: "):
        TagFilter.from_json({"include": ["["]})


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"include": ("a", "[")}, "include[1]"),
    ({"include": ("",)}, "include[0]"),
    ({"include": (None,)}, "include[0]"),
    ({"include": "v.*"}, "include"),
    ({"exclude": ("x" * (MAX_PATTERN_LENGTH + 1),)}, "exclude[0]"),
    ({"exclude": ("a",) * (MAX_PATTERNS + 1)}, "exclude"),
    ({"include": ("(?P<n>a)(?P<n>b)",)}, "include[0]"),
    ({"include": ("a{1,99999999999999}",)}, "include[0]"),
    ({"semver": ""}, "semver"),
    ({"semver": 1}, "semver"),
    ({"semver": "x" * 300}, "semver"),
    ({"latest": 0}, "latest"),
    ({"latest": -1}, "latest"),
    ({"latest": False}, "latest"),
])
def test_invalid_fields_are_refused_by_name(kwargs, field: str) -> None:
    with pytest.raises(FilterFieldError) as caught:
        TagFilter(**kwargs)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_pattern_of_the_longest_length_is_accepted() -> None:
    assert TagFilter(include=("a" * MAX_PATTERN_LENGTH,)).select(["a" * 128]) == []


@pytest.mark.parametrize("pattern", [
    r"(a+)+", r"(a*)*", r"(.*)*", r"(.+)+$", r"(\d+\.?)+", r"([a-z]+-?)+", r"(?:a{1,3})+", r"(a|b+)*",
    r"x(?:(?:\w+)?)*y", r"((ab)*)+", r"(?=a)(\w+\s?)*",
])
def test_nested_repetition_is_refused(pattern: str) -> None:
    assert nested_repetition(pattern)
    with pytest.raises(FilterFieldError, match="exponential time"):
        TagFilter(exclude=(pattern,))


@pytest.mark.parametrize("pattern", [
    r"\d+(\.\d+)*", r"v?\d+\.\d+\.\d+", r"[a-z]+(-[a-z]+)*", r"(ab)+", r"(a{3})+", r"(foo|bar)+", r".*",
    r"(?:v\d+\.)?\d+", r"(.+)?", r"release-.*", r"(?:\d+\.){2}\d+",
])
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert not nested_repetition(pattern)
    TagFilter(include=(pattern,))


@pytest.mark.parametrize(("tag", "stage"), [
    ("a" * 129, "valid"), ("", "valid"), ("-x", "valid"), (".x", "valid"), ("a b", "valid"), ("a\nb", "valid"),
    ("a/b", "valid"), ("a:b", "valid"), ("ü", "valid"), ("a\x00", "valid"), ("1.2.3+b", "valid"),
    (FALLBACK, "referrers"), ("sha512-" + "cd" * 60, "referrers"),
])
def test_tags_no_registry_could_hold_and_referrer_tags_are_never_selected(tag: str, stage: str) -> None:
    assert verdicts(TagFilter(include=(".*",)), [tag, "ok"]) == {tag: stage}


def test_a_tag_of_the_longest_length_is_selected() -> None:
    assert TagFilter(include=("a+",)).select(["a" * 128]) == ["a" * 128]


def test_long_runs_are_linear_for_the_tag_grammar_and_ordinary_patterns() -> None:
    tags = [f"{i % 7}.{i % 13}.{i}" for i in range(5000)] + ["x" * 127 + "!", "a" * 128]
    tags += [f"t{i}" for i in range(5000)]
    chain = TagFilter(include=(*(rf".*{i}.*" for i in range(MAX_PATTERNS - 1)), r"\d+(\.\d+)*"),
                      exclude=(r"[a-z]+(-[a-z]+)*",), latest=10)
    started = time.monotonic()
    assert len(chain.select(tags)) == 10
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- properties

tag_words = st.one_of(
    st.builds(lambda v, p, s, b: f"{'v' if v else ''}{p[0]}.{p[1]}.{p[2]}{s}{b}", st.booleans(),
              st.tuples(*[st.integers(0, 12)] * 3), st.sampled_from(["", "", "-rc.1", "-rc.2", "-alpine", "-0"]),
              st.sampled_from(["", "", "_b1"])),
    st.sampled_from(["latest", "stable", "1.27", "3", "main-abc", "release-1", FALLBACK, "a" * 129, "-bad", "v"]),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,10}", fullmatch=True),
)
PATTERNS = [r"v.*", r"1\..*", r".*rc.*", r"[a-z]+", r"\d+\.\d+\.\d+", r".*-.*", r"\d+", r".*_b1", r"[0-9].*"]
RANGES = ["*", "^1", "~1.2", ">=2, <5", "1.x || 3.x", "0.1 - 4", ">=1.0.0-0", "<3", "^0.0.1", "=1.2.3"]
filters = st.builds(
    TagFilter,
    include=st.lists(st.sampled_from(PATTERNS), max_size=2).map(tuple),
    semver=st.none() | st.sampled_from(RANGES),
    exclude=st.lists(st.sampled_from(PATTERNS), max_size=2).map(tuple),
    latest=st.none() | st.integers(1, 6),
)
tag_lists = st.lists(tag_words, max_size=30)


@settings(max_examples=300, deadline=None)
@given(chain=filters, tags=tag_lists)
def test_every_selected_tag_passed_every_stage(chain: TagFilter, tags: list[str]) -> None:
    selected = chain.select(tags)
    assert set(selected) <= set(tags)
    assert len(selected) == len(set(selected))
    for tag in selected:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag) and not tag.startswith("sha256-")
        assert not chain.include or any(re.fullmatch(p, tag) for p in chain.include)
        assert not any(re.fullmatch(p, tag) for p in chain.exclude)  # exclude never lets one through
        if chain.semver:
            version = parse_tag_version(tag)
            assert version is not None and parse_range(chain.semver).matches(version)


@settings(max_examples=300, deadline=None)
@given(chain=filters, tags=tag_lists)
def test_latest_n_takes_the_n_greatest_candidates(chain: TagFilter, tags: list[str]) -> None:
    candidates = TagFilter(chain.include, chain.semver, chain.exclude).select(tags)
    selected = chain.select(tags)
    assert len(selected) == (len(candidates) if chain.latest is None else min(chain.latest, len(candidates)))
    all_versions = all(parse_tag_version(t) is not None for t in candidates)
    key = version_key if all_versions else (lambda t: t)
    left_out = set(candidates) - set(selected)
    assert all(key(kept) > key(out) for kept in selected for out in left_out)


@settings(max_examples=200, deadline=None)
@given(chain=filters, tags=tag_lists, seed=st.integers(0, 2**16))
def test_order_and_repetition_of_the_input_do_not_matter(chain: TagFilter, tags: list[str], seed: int) -> None:
    shuffled = tags + tags[: seed % (len(tags) + 1)]
    random.Random(seed).shuffle(shuffled)
    assert chain.select(shuffled) == chain.select(tags)


@settings(max_examples=200, deadline=None)
@given(chain=filters, tags=tag_lists)
def test_selecting_from_the_selection_changes_nothing(chain: TagFilter, tags: list[str]) -> None:
    once = chain.select(tags)
    assert chain.select(once) == once


@settings(max_examples=200, deadline=None)
@given(chain=filters, tags=tag_lists)
def test_every_tag_is_either_selected_or_rejected_once(chain: TagFilter, tags: list[str]) -> None:
    result = chain.evaluate(tags)
    rejected = [r.tag for r in result.rejected]
    assert sorted([*result.selected, *rejected]) == sorted(set(tags))
    assert TagFilter.from_json(chain.to_json()) == chain
