"""``ferry tags`` without a registry: bad input exits 2 naming the option, before any connection;
a pattern that backtracks catastrophically is stopped by the deadline."""

from __future__ import annotations

import time

import pytest

from ferry.errors import UsageError
from ferry.sync.filters import TagFilter
from tests.helpers import run_ferry

REPO = "127.0.0.1:9/app"  # never reached: the unit conftest fails any connection


@pytest.mark.parametrize(("args", "message"), [
    (["--latest", "0"], "--latest: must be a whole number of at least 1, not 0"),
    (["--include", "("], "--include: '(' is not a valid regular expression"),
    (["--include", "ok", "--include", "(a+)+"], "--include #2: '(a+)+' repeats a group"),
    (["--exclude", "x" * 300], "--exclude: longer than 256 characters"),
    (["--semver", "^1.2.3.4"], "--semver: '^1.2.3.4' is not a version range"),
    (["--semver", ""], "--semver: '' is not a version range: empty"),
])
def test_a_bad_filter_exits_2_naming_the_option(capsys, args: list[str], message: str) -> None:
    result = run_ferry(capsys, "tags", REPO, *args)
    assert result.code == 2
    assert result.err.startswith(f"ferry: error: {message}")
    assert "Traceback" not in result.err and result.out == ""


@pytest.mark.parametrize(("repo", "message"), [
    (f"{REPO}:v1", "give the repository without a tag or digest"),
    (f"{REPO}@sha256:" + "a" * 64, "give the repository without a tag or digest"),
    ("127.0.0.1:9", "names no repository"),
    ("oci:/tmp/nowhere", "names no repository"),
])
def test_repo_must_be_a_repository(capsys, repo: str, message: str) -> None:
    result = run_ferry(capsys, "tags", repo)
    assert result.code == 2 and message in result.err


def test_a_latest_that_is_not_a_number_is_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_ferry(capsys, "tags", REPO, "--latest", "three")
    assert exited.value.code == 2
    assert "--latest: invalid int value: 'three'" in capsys.readouterr().err


def test_catastrophic_backtracking_is_refused_naming_the_pattern_and_the_tag() -> None:
    chain = TagFilter(include=("(a|aa)+b",))  # overlapping alternatives: past the static check, exponential
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"include\[0\]: '\(a\|aa\)\+b' took more than 50 ms on tag 'aaaa.*backtracks"):
        chain.evaluate(["a" * 100])
    assert time.monotonic() - started < 2


def test_adjacent_repeats_are_matched_in_time() -> None:
    assert TagFilter(include=("(x+x+)+y",)).select(["x" * 60, "xxy"]) == ["xxy"]


