"""Tags read as Semantic Versions, and npm-style version ranges over them.

**Which tags are versions.** A tag is a version when, after one optional leading ``v``, it is a full
SemVer 2.0.0 version ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``. A registry tag cannot hold ``+``, so
``_`` stands for it, as Helm writes chart versions into OCI tags (``1.2.3_build.5`` is ``1.2.3+build.5``).
Partial tags (``1.27``, ``3``) are not versions: in container registries they are floating aliases
that move with every patch, so they match no range and make ``latest N`` order lexically.
``1.25.3-alpine`` is a prerelease in SemVer's terms, so ranges leave it out like any other.

**Ranges**, as npm's node-semver writes them (the syntax users know from npm, and from Helm and Flux,
whose Masterminds semver follows it), plus ``,`` as a second spelling of "and" (``>=1.2, <2``):

- ``1.2.3``, ``=1.2.3``: exactly that version (build metadata ignored). A ``v`` may lead any version.
- ``>1.2.3``, ``>=1.2``, ``<1.2``, ``<=1.2``: comparators; missing parts are zero, so ``>1.2`` is
  ``>=1.3.0`` and ``<=1.2`` is ``<1.3.0``. Spaces after the operator are allowed (``>= 1.2``).
- ``1.x``, ``1.2.*``, ``1``: x-ranges, the whole line (``1.2.*`` is ``>=1.2.0 <1.3.0``); ``*``, ``x``
  and ``X`` alone are every release.
- ``~1.2.3``, ``~1.2``: patch updates (``>=1.2.3 <1.3.0``); ``~1`` is ``>=1.0.0 <2.0.0``; ``~>`` = ``~``.
- ``^1.2.3``: no change of the leftmost non-zero part: ``<2.0.0``; ``^0.2.3`` is ``<0.3.0``, ``^0.0.3``
  is ``<0.0.4``; ``^1.2`` is ``>=1.2.0 <2.0.0``, ``^0.0`` is ``<0.1.0``.
- ``1.2 - 2.3.4``: an inclusive hyphen range (alone in its set); a partial upper end takes its whole
  line (``1.2.3 - 2`` is ``>=1.2.3 <3.0.0``).
- ``A B`` and ``A, B``: both; ``A || B``: either.

**Prereleases** follow npm: a prerelease version is in a range only when it satisfies every
comparator of one ``||`` set *and* that set names a prerelease of the same ``MAJOR.MINOR.PATCH``.
``^1.4.0`` leaves ``1.5.0-rc.1`` out; ``>=1.5.0-rc.1 <2`` takes ``1.5.0-rc.2`` but not ``1.6.0-rc.1``.
Opting into one version's prereleases does not opt into every later line's. (Masterminds' semver,
used by Helm and Flux, differs here: there ``>=1.2.3-0`` admits every later prerelease too.)

**The library.** Parsing a version and SemVer precedence (prerelease identifiers compared
numerically or by ASCII, build metadata ignored) come from ``semver`` (python-semver: BSD, typed, pure
Python, maintained, no dependencies). ``packaging`` does not fit: it implements PEP 440, which renames
prereleases (``1.0.0-rc.1`` becomes ``1.0.0rc1``), rejects most SemVer prerelease tags
(``1.0.0-alpine``), orders build metadata as local versions, and has no carets or tildes. python-semver
has no ranges (one comparison at a time); the PyPI packages with npm's grammar are an untyped
line-by-line port (``node-semver``) and ``semantic-version``'s ``NpmSpec`` (untyped, no release since
2022). The grammar is therefore here: it is small, its only regular expressions are linear (no
nested or overlapping repetition), and a range is at most 256 characters.

May be imported by ``ferry/sync`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from semver import Version

#: Longest range accepted, as for tag patterns.
MAX_RANGE_LENGTH = 256
_OPERATORS = ("<=", ">=", "~>", "<", ">", "=", "^", "~")
# One dot-separated part: a number without leading zeros, or a wildcard. Anchored, no nested repeats.
_NUMBER = re.compile(r"0|[1-9][0-9]*")
_IDENTIFIERS = re.compile(r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*")
_ZERO = Version(0, 0, 0, prerelease="0")  # the lowest version there is


def parse_tag_version(tag: str) -> Version | None:
    """The version a tag names (``v1.2.3``, ``1.2.3-rc.1``, Helm's ``1.2.3_build``), or None."""
    text = tag[1:] if tag.startswith("v") else tag
    if not text[:1].isdigit() or ("+" in text and "_" in text):
        return None
    try:
        return Version.parse(text.replace("_", "+", 1))
    except ValueError:
        return None


def version_key(tag: str) -> tuple[Any, str]:
    """A sort key ordering version tags by SemVer precedence, then by the tag text (so ``v1.0.0``,
    ``1.0.0`` and ``1.0.0_b1``, equal in precedence, still have one order). Tags must be versions."""
    version = parse_tag_version(tag)
    assert version is not None, tag
    return _precedence(version), tag


def _compare(a: Version, b: Version) -> int:
    return a.compare(b)


_precedence = cmp_to_key(_compare)


@dataclass(frozen=True)
class _Partial:
    """A version as a range writes it: trailing parts may be missing or wildcards (None)."""

    major: int | None
    minor: int | None
    patch: int | None
    prerelease: str | None = None

    @property
    def full(self) -> bool:
        return self.patch is not None

    def floor(self) -> Version:
        """The lowest version it covers (missing parts zero)."""
        return Version(self.major or 0, self.minor or 0, self.patch or 0, prerelease=self.prerelease)

    def ceiling(self) -> Version:
        """The first version past what it covers: ``1`` → ``2.0.0-0``, ``1.2`` → ``1.3.0-0``."""
        assert self.major is not None
        if self.minor is None:
            return Version(self.major + 1, 0, 0, prerelease="0")
        return Version(self.major, self.minor + 1, 0, prerelease="0")


Comparator = tuple[str, Version]  # (one of < <= > >= =, version)


@dataclass(frozen=True)
class VersionRange:
    """A parsed range: ``sets`` are alternatives (``||``), each a conjunction of comparators.

    An empty conjunction is every release. :func:`parse_range` builds one; :meth:`matches` tests it.
    """

    text: str
    sets: tuple[tuple[Comparator, ...], ...]

    def matches(self, version: Version) -> bool:
        return any(_set_matches(comparators, version) for comparators in self.sets)

    def matches_ignoring_prereleases(self, version: Version) -> bool:
        """Whether ``version`` satisfies the comparators alone (to say why a prerelease was left out)."""
        return any(all(_holds(op, bound, version) for op, bound in s) for s in self.sets)


def _holds(op: str, bound: Version, version: Version) -> bool:
    order = version.compare(bound)
    return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0, "=": order == 0}[op]


def _set_matches(comparators: tuple[Comparator, ...], version: Version) -> bool:
    if not all(_holds(op, bound, version) for op, bound in comparators):
        return False
    if version.prerelease is None:
        return True
    return any(bound.prerelease is not None and bound.to_tuple()[:3] == version.to_tuple()[:3]
               for _, bound in comparators)


def parse_range(text: str) -> VersionRange:
    """The range ``text`` writes; ValueError saying what is wrong and what a range looks like."""
    if len(text) > MAX_RANGE_LENGTH:
        raise ValueError(f"longer than {MAX_RANGE_LENGTH} characters")
    if not text.strip():
        raise ValueError("empty; '*' is every release")
    sets = []
    for alternative in text.split("||"):
        if not alternative.strip():
            raise ValueError(f"{text!r} has an empty alternative around '||'")
        sets.append(_comparator_set(alternative))
    return VersionRange(text, tuple(sets))


def _tokens(text: str) -> list[str]:
    """Words split at spaces and commas, an operator written apart (``>= 1.2``) joined to its version."""
    words = text.replace(",", " ").split()
    tokens: list[str] = []
    for word in words:
        if tokens and tokens[-1] in _OPERATORS:
            tokens[-1] += word
        else:
            tokens.append(word)
    if tokens and tokens[-1] in _OPERATORS:
        raise ValueError(f"{tokens[-1]!r} needs a version after it")
    return tokens


def _comparator_set(text: str) -> tuple[Comparator, ...]:
    tokens = _tokens(text)
    if len(tokens) == 3 and tokens[1] == "-":
        return _hyphen(_partial(tokens[0]), _partial(tokens[2]))
    if "-" in tokens:
        raise ValueError("a hyphen range is 'LOW - HIGH' alone between '||'")
    comparators: list[Comparator] = []
    for token in tokens:
        op = next((o for o in _OPERATORS if token.startswith(o)), "")
        comparators += _desugar(op, _partial(token[len(op):]))
    return tuple(comparators)


def _partial(text: str) -> _Partial:
    """``1``, ``1.2``, ``1.x``, ``v1.2.3-rc.1+b`` ...; ValueError for anything else."""
    wrong = ValueError(f"{text!r}: versions in a range look like 1.2.3, 1.2, 1.x or v1.2.3-rc.1")
    body, plus, build = (text[1:] if text[:1] == "v" else text).partition("+")
    core, dash, prerelease = body.partition("-")
    for given, value in ((plus, build), (dash, prerelease)):
        if given and _IDENTIFIERS.fullmatch(value) is None:
            raise wrong
    parts = core.split(".")
    if len(parts) > 3:
        raise wrong
    numbers: list[int | None] = []
    for part in parts:
        if part in ("x", "X", "*"):
            numbers.append(None)
        elif _NUMBER.fullmatch(part) is None:
            raise wrong
        elif numbers and numbers[-1] is None:
            raise ValueError(f"{text!r}: a number cannot follow a wildcard")
        else:
            numbers.append(int(part))
    numbers += [None] * (3 - len(numbers))
    if prerelease and numbers[2] is None:
        raise ValueError(f"{text!r}: a prerelease needs a full MAJOR.MINOR.PATCH version")
    if prerelease and parse_tag_version(f"{core}-{prerelease}") is None:
        raise ValueError(f"{text!r}: a numeric prerelease identifier has no leading zeros")
    return _Partial(numbers[0], numbers[1], numbers[2], prerelease or None)


def _desugar(op: str, p: _Partial) -> list[Comparator]:
    """One written comparator as plain ones; ``[]`` is every release."""
    if op in ("", "="):
        return [("=", p.floor())] if p.full else _span(p)
    if op in ("~", "~>"):
        return [(">=", p.floor()), ("<", Version(p.major, (p.minor or 0) + 1, 0, prerelease="0"))] \
            if p.full and p.major is not None and p.minor is not None else _span(p)
    if op == "^":
        return _caret(p)
    if p.major is None:  # >=* and <=* are everything, >* and <* nothing
        return [] if op in (">=", "<=") else [("<", _ZERO)]
    if p.full or op == ">=":
        return [(op, p.floor())]
    if op == ">":
        return [(">=", p.ceiling().replace(prerelease=None))]
    if op == "<":
        return [("<", p.floor().replace(prerelease="0"))]
    return [("<", p.ceiling())]  # <=1.2 is <1.3.0-0


def _span(p: _Partial) -> list[Comparator]:
    """What an x-range covers: ``1`` → ``>=1.0.0 <2.0.0-0``; ``*`` → every release."""
    if p.major is None:
        return []
    return [(">=", p.floor()), ("<", p.ceiling())]


def _caret(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.minor is None or p.major > 0:
        upper = Version(p.major + 1, 0, 0, prerelease="0")
    elif p.patch is None or p.minor > 0:
        upper = Version(0, p.minor + 1, 0, prerelease="0")
    else:
        upper = Version(0, 0, p.patch + 1, prerelease="0")
    return [(">=", p.floor()), ("<", upper)]


def _hyphen(low: _Partial, high: _Partial) -> tuple[Comparator, ...]:
    lower: list[Comparator] = [] if low.major is None else [(">=", low.floor())]
    if high.major is None:
        return tuple(lower)
    upper: Comparator = ("<=", high.floor()) if high.full else ("<", high.ceiling())
    return (*lower, upper)
