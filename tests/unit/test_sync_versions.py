"""Tags read as versions and npm-style ranges: tables from node-semver's documented behaviour, the
SemVer 2.0.0 precedence example, and properties checked against formulas written here."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.sync.versions import MAX_RANGE_LENGTH, parse_range, parse_tag_version, version_key


def matches(range_text: str, tag: str) -> bool:
    version = parse_tag_version(tag)
    assert version is not None, tag
    return parse_range(range_text).matches(version)


# --------------------------------------------------------------------------- tags as versions


@pytest.mark.parametrize(("tag", "expected"), [
    ("1.2.3", (1, 2, 3, None, None)),
    ("v1.2.3", (1, 2, 3, None, None)),
    ("0.0.0", (0, 0, 0, None, None)),
    ("1.2.3-rc.1", (1, 2, 3, "rc.1", None)),
    ("1.25.3-alpine", (1, 25, 3, "alpine", None)),        # a variant is a prerelease in SemVer's terms
    ("1.2.3_build.5", (1, 2, 3, None, "build.5")),        # Helm's spelling of 1.2.3+build.5 in a tag
    ("v1.2.3-rc.1_sha.abc", (1, 2, 3, "rc.1", "sha.abc")),
    ("1.2.3+build.5", (1, 2, 3, None, "build.5")),        # not a legal tag, but a version
    ("10.20.30", (10, 20, 30, None, None)),
    ("1.0.0-x-y-z.--", (1, 0, 0, "x-y-z.--", None)),
    ("99999999999999999999.0.0", (99999999999999999999, 0, 0, None, None)),
])
def test_tags_that_are_versions(tag: str, expected: tuple) -> None:
    version = parse_tag_version(tag)
    assert version is not None
    assert (version.major, version.minor, version.patch, version.prerelease, version.build) == expected


@pytest.mark.parametrize("tag", [
    "1.27", "3", "latest", "stable", "", "v", "vv1.2.3", "V1.2.3", "01.2.3", "1.02.3", "1.2.03",
    "1.2.3-01", "1.2.3-", "1.2.3_", "1.2.3_a_b", "1.2.3-rc..1", "1.2.3.4", "1.2.3-ü",
    "\uff11.\uff12.\uff13",  # full-width digits
    "1.2.3+a_b", "-1.2.3", "1.2.3 ", " 1.2.3", "sha256-" + "a" * 64, "1.2.3\n",
])
def test_tags_that_are_not_versions(tag: str) -> None:
    assert parse_tag_version(tag) is None


def test_precedence_follows_the_semver_spec_example() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered


def test_equal_precedence_is_ordered_by_text() -> None:
    assert sorted(["v1.0.0", "1.0.0_b2", "1.0.0", "1.0.0_b1"], key=version_key) == \
        ["1.0.0", "1.0.0_b1", "1.0.0_b2", "v1.0.0"]


# --------------------------------------------------------------------------- ranges

TABLE = [
    # carets: no change to the leftmost non-zero part
    ("^1.2.3", {"1.2.3": True, "1.9.9": True, "v1.20.0": True, "1.2.2": False, "2.0.0": False,
                "2.0.0-rc.1": False, "1.3.0-beta": False, "1.2.3-rc.1": False}),
    ("^0.2.3", {"0.2.3": True, "0.2.9": True, "0.3.0": False, "0.2.2": False}),
    ("^0.0.3", {"0.0.3": True, "0.0.4": False, "0.0.2": False}),
    ("^1.2", {"1.2.0": True, "1.99.0": True, "1.1.9": False, "2.0.0": False}),
    ("^1.x", {"1.0.0": True, "1.9.0": True, "2.0.0": False, "0.9.0": False}),
    ("^0.0", {"0.0.0": True, "0.0.9": True, "0.1.0": False}),
    ("^0", {"0.0.0": True, "0.9.9": True, "1.0.0": False}),
    ("^1.2.3-beta.2", {"1.2.3-beta.2": True, "1.2.3-beta.4": True, "1.2.3-beta.10": True, "1.2.3": True,
                       "1.9.0": True, "1.2.3-beta.1": False, "1.2.4-beta.2": False, "1.2.3-alpha.9": False}),
    # tildes: patch updates (minor updates when only a major is given)
    ("~1.2.3", {"1.2.3": True, "1.2.9": True, "1.3.0": False, "1.2.2": False}),
    ("~1.2", {"1.2.0": True, "1.2.9": True, "1.3.0": False}),
    ("~1", {"1.0.0": True, "1.9.0": True, "2.0.0": False}),
    ("~0.2", {"0.2.5": True, "0.3.0": False}),
    ("~>1.2.3", {"1.2.5": True, "1.3.0": False}),
    ("~1.2.3-beta.2", {"1.2.3-beta.3": True, "1.2.4": True, "1.2.4-beta": False, "1.3.0": False}),
    # comparators, with missing parts, commas and spaces
    (">=1.2, <2", {"1.2.0": True, "1.99.99": True, "1.1.9": False, "2.0.0": False, "2.0.0-0": False,
                   "1.5.0-rc.1": False}),
    (">=1.2 <2", {"1.2.0": True, "2.0.0": False}),
    (">= 1.2.3 , < 1.3", {"1.2.3": True, "1.2.99": True, "1.3.0": False}),
    (">1.2", {"1.2.9": False, "1.3.0": True}),
    (">1", {"1.9.0": False, "2.0.0": True}),
    (">1.2.3", {"1.2.3": False, "1.2.4": True, "1.2.4-rc.1": False}),
    ("<1.2", {"1.1.9": True, "1.2.0": False, "1.2.0-rc.1": False}),
    ("<=1.2", {"1.2.9": True, "1.3.0": False}),
    ("<=1.2.3", {"1.2.3": True, "1.2.4": False}),
    ("=1.2.3", {"1.2.3": True, "1.2.3_build.1": True, "v1.2.3": True, "1.2.4": False}),
    ("1.2.3", {"1.2.3": True, "1.2.4": False, "1.2.3-rc.1": False}),
    ("v1.2.3+other", {"1.2.3_build.1": True}),  # build metadata never counts
    (">=v1.2.0", {"1.2.0": True, "v1.1.0": False}),
    # x-ranges and stars
    ("*", {"0.0.0": True, "1.0.0": True, "99.0.0": True, "1.0.0-rc.1": False}),
    ("x", {"1.0.0": True}),
    ("1.x", {"1.0.0": True, "1.99.0": True, "2.0.0": False}),
    ("1.2.*", {"1.2.9": True, "1.3.0": False}),
    ("1.X", {"1.5.0": True}),
    ("1", {"1.5.0": True, "2.0.0": False}),
    (">=*", {"0.0.0": True}),
    (">*", {"0.0.0": False, "9.9.9": False}),
    ("<*", {"0.0.0": False}),
    # hyphen ranges, inclusive; a partial upper end takes its whole line
    ("1.2.3 - 2.3.4", {"1.2.3": True, "2.3.4": True, "1.2.2": False, "2.3.5": False}),
    ("1.2 - 2.3", {"1.2.0": True, "2.3.9": True, "2.4.0": False}),
    ("1.2.3 - 2", {"2.9.9": True, "3.0.0": False}),
    # alternatives
    ("1.2.3 || 2.x", {"1.2.3": True, "2.5.0": True, "1.5.0": False}),
    ("<1 || >=3", {"0.5.0": True, "2.0.0": False, "3.0.0": True}),
    # prereleases only where the range names one of the same MAJOR.MINOR.PATCH (npm)
    (">=1.0.0-0", {"1.0.0-alpha": True, "1.0.0": True, "2.0.0": True, "1.0.1-alpha": False}),
    (">=1.5.0-rc.1 <2", {"1.5.0-rc.2": True, "1.5.0": True, "1.5.0-rc.0": False, "1.6.0-rc.1": False}),
    ("1.5.0-rc.1 || ^1.6.0-beta", {"1.5.0-rc.1": True, "1.6.0-beta.3": True, "1.5.0-rc.2": False}),
]


@pytest.mark.parametrize(("range_text", "tag", "expected"),
                         [(r, t, e) for r, cases in TABLE for t, e in cases.items()])
def test_range_table(range_text: str, tag: str, expected: bool) -> None:
    assert matches(range_text, tag) is expected


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"), ("   ", "empty"), ("x" * (MAX_RANGE_LENGTH + 1), "longer than"),
    (">=", "needs a version"), ("1.2.3 >=", "needs a version"), ("^", "needs a version"),
    ("1.2.3.4", "look like"), ("01.2.3", "look like"), ("1.2.3-", "look like"), ("1.2.3+", "look like"),
    ("1.2.3-01", "leading zeros"), ("1.x.3", "cannot follow a wildcard"), ("1.2-rc.1", "full MAJOR"),
    ("a.b.c", "look like"), (">=1 ||", "empty alternative"), ("|| 1", "empty alternative"),
    ("=>1.2", "look like"), ("1 - 2 - 3", "hyphen range"), ("1 -", "hyphen range"), ("1.2.3 -2", "look like"),
    ("!1.2.3", "look like"), ("V1.2.3", "look like"), ("1.2.3_b", "look like"), (">=1.2;<2", "look like"),
])
def test_ranges_that_are_refused(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_range(text)


# --------------------------------------------------------------------------- properties

parts = st.integers(min_value=0, max_value=4)
releases = st.tuples(parts, parts, parts)


def tag_of(v: tuple[int, int, int]) -> str:
    return "{}.{}.{}".format(*v)


@given(base=releases, version=releases)
def test_caret_is_the_leftmost_non_zero_rule(base, version) -> None:
    major, minor, _ = base
    if major:
        same = version[0] == major
    elif minor:
        same = version[:2] == (0, minor)
    else:
        same = version == base
    assert matches(f"^{tag_of(base)}", tag_of(version)) is (version >= base and same)


@given(base=releases, version=releases)
def test_tilde_allows_patch_updates(base, version) -> None:
    assert matches(f"~{tag_of(base)}", tag_of(version)) is (version >= base and version[:2] == base[:2])


@given(low=releases, high=releases, version=releases)
def test_hyphen_and_comparators_are_inclusive_bounds(low, high, version) -> None:
    inside = low <= version <= high
    assert matches(f"{tag_of(low)} - {tag_of(high)}", tag_of(version)) is inside
    assert matches(f">={tag_of(low)}, <={tag_of(high)}", tag_of(version)) is inside


@given(major=parts, minor=parts, version=releases)
def test_x_ranges_cover_their_line(major, minor, version) -> None:
    assert matches(f"{major}.{minor}.x", tag_of(version)) is (version[:2] == (major, minor))
    assert matches(f"{major}.*", tag_of(version)) is (version[0] == major)


identifier = st.one_of(st.integers(min_value=0, max_value=20).map(str), st.sampled_from(["alpha", "beta", "rc", "x-y"]))
prerelease = st.lists(identifier, min_size=1, max_size=3).map(".".join)


def spec_key(tag: str) -> tuple:
    """SemVer 2.0.0 §11, written independently: numbers numerically, identifiers numeric < alphanumeric,
    a release above its prereleases, a longer prerelease above its prefix."""
    core, _, pre = tag.partition("-")
    numbers = tuple(int(p) for p in core.split("."))
    if not pre:
        return (numbers, 1, ())
    return (numbers, 0, tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split(".")))


@given(st.lists(st.tuples(releases, st.none() | prerelease), min_size=1, max_size=12, unique=True))
def test_version_order_is_semver_precedence(versions) -> None:
    tags = [tag_of(v) + (f"-{p}" if p else "") for v, p in versions]
    assert sorted(tags, key=version_key) == sorted(tags, key=lambda t: (spec_key(t), t))
