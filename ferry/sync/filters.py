"""Tag selection: which tags of a repository a sync takes, as one chain.

Every tag passes the stages in this order, and the first that refuses it gives the reason:

1. **valid**: a registry tag (``[A-Za-z0-9_][A-Za-z0-9._-]*``, at most 128 characters). Anything
   else a registry might answer with is refused before a pattern runs on it.
2. **referrers**: referrers fallback tags (``sha256-<hex>``) name bookkeeping, never an artifact.
3. **include**: with patterns, the tag must fully match at least one (``1\\.2`` takes ``1.2``, not
   ``1.25``; write ``.*`` where you mean "anything").
4. **semver**: with a range, the tag must be a version in it (:mod:`ferry.sync.versions`: a leading
   ``v`` counts, partial tags such as ``1.27`` are not versions, prereleases only where the range names
   one). With both include and semver, a tag must pass both.
5. **exclude**: the tag must fully match none of the patterns.
6. **latest N**: of what is left (the candidates), the N greatest. The order is SemVer precedence
   when *every* candidate is a version, else plain lexical order (code points: ``1.10`` < ``1.9``)
   over all of them, versions included. One non-version tag among versions (``1.27`` beside
   ``1.27.3``) therefore switches the whole set to lexical order; :attr:`FilterResult.order` and
   :attr:`FilterResult.not_versions` say when that happened, so narrow the candidates with a range
   or an include pattern. Versions equal in precedence (``v1.0.0``, ``1.0.0``) are ordered by text.

The result does not depend on the order or repetition of the input, and the selected tags come out
sorted the same way: by precedence when all of them are versions, else lexically. Selecting from the
selection gives the selection again.

**Patterns** are Python regular expressions matched against the whole tag. Some patterns take
exponential time on a tag they do not match (``(a+)+b``). So a pattern is at most 256 characters, a
list at most 32 patterns, tags at most 128 characters of the tag alphabet, and a pattern that
repeats a group which can fill each repetition by repeating itself (``(a+)+``, ``(\\w+-?)*``,
``(.*)*``) is refused when it is given, with a rewrite hint. The rest (overlapping alternatives
such as ``(a|aa)+b``) is bounded when it runs: every match has a time limit
(:mod:`ferry.patterns`), and a pattern that exceeds it refuses the whole filter, naming the
pattern and the tag, in a worker thread as much as in ``ferry tags``.

May be imported by ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ferry.errors import UsageError
from ferry.oci.referrers import is_fallback_tag
from ferry.patterns import MatchBudget, PatternTimeout, TagPattern
from ferry.sync.versions import VersionRange, parse_range, parse_tag_version, version_key
from ferry.transfer.fields import string, string_list

MAX_PATTERN_LENGTH = 256
MAX_PATTERNS = 32
MAX_TAG_LENGTH = 128
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")  # the distribution spec's tag grammar
_FIELDS = ("include", "semver", "exclude", "latest")


class FilterFieldError(UsageError):
    """A field of a :class:`TagFilter` is wrong. ``field`` is its path inside the filter
    (``include[1]``, ``latest``); ``problem`` says what is wrong. Faces render both their own way."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Rejection:
    """A tag left out, the stage that left it out (``valid``, ``referrers``, ``include``, ``semver``,
    ``exclude``, ``latest``) and why, in words."""

    tag: str
    stage: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"tag": self.tag, "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True)
class FilterResult:
    """What a chain made of a tag list. ``order`` is how the candidates were ranked for ``latest``
    (``semver`` or ``lexical``); ``not_versions`` holds the candidates that made it lexical."""

    selected: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    order: str
    not_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagFilter:
    """The tag selection chain of a sync (see the module docstring for the exact rules).

    ``include``/``exclude``: regexes, each matched against the whole tag (several: any of them).
    ``semver``: a range such as ``>=1.2, <2``, ``^1.4`` or ``~1.4.2``. ``latest``: keep the N greatest
    candidates. Every field is optional; the empty filter takes every valid, non-referrer tag.
    A wrong field raises :class:`FilterFieldError` naming it.
    """

    include: tuple[str, ...] = ()
    semver: str | None = None
    exclude: tuple[str, ...] = ()
    latest: int | None = None

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise FilterFieldError(name, "must be a list of regular expressions")
            object.__setattr__(self, name, tuple(value))
        self._compiled  # noqa: B018 - validate every field now, not on first use
        if self.latest is not None and (not isinstance(self.latest, int) or isinstance(self.latest, bool)
                                        or self.latest < 1):
            raise FilterFieldError("latest", f"must be a whole number of at least 1, not {self.latest!r}")

    @cached_property
    def _compiled(self) -> tuple[tuple[TagPattern, ...], VersionRange | None, tuple[TagPattern, ...]]:
        include = _patterns(self.include, "include")
        exclude = _patterns(self.exclude, "exclude")
        if self.semver is None:
            return include, None, exclude
        if not isinstance(self.semver, str):
            raise FilterFieldError("semver", "must be a version range (a string)")
        try:
            return include, parse_range(self.semver), exclude
        except ValueError as exc:
            raise FilterFieldError("semver", f"{self.semver!r} is not a version range: {exc}") from exc

    def select(self, tags: Iterable[str]) -> list[str]:
        """The tags the chain takes from ``tags``, sorted (see the module docstring)."""
        return list(self.evaluate(tags).selected)

    def evaluate(self, tags: Iterable[str]) -> FilterResult:
        """The tags taken, and every tag left out with its stage and reason (sorted by tag)."""
        rejected: list[Rejection] = []
        candidates: list[str] = []
        unique = sorted(set(tags))
        budget = MatchBudget(len(unique))
        for tag in unique:
            refusal = self._refusal(tag, budget)
            if refusal is None:
                candidates.append(tag)
            else:
                rejected.append(Rejection(tag, *refusal))
        not_versions = tuple(t for t in candidates if parse_tag_version(t) is None)
        order = "lexical" if not_versions else "semver"
        ranked = candidates if not_versions else sorted(candidates, key=version_key)
        if self.latest is not None and len(ranked) > self.latest:
            cut = len(ranked) - self.latest
            reason = f"not among the latest {self.latest} ({order} order)"
            rejected += [Rejection(tag, "latest", reason) for tag in ranked[:cut]]
            ranked = ranked[cut:]
        return FilterResult(_sorted_selection(ranked), tuple(sorted(rejected, key=lambda r: r.tag)), order,
                            not_versions)

    def _refusal(self, tag: str, budget: MatchBudget | None = None) -> tuple[str, str] | None:
        """(stage, reason) of the first stage refusing ``tag``; None when it is a candidate."""
        include, versions, exclude = self._compiled
        if len(tag) > MAX_TAG_LENGTH:
            return "valid", f"longer than the {MAX_TAG_LENGTH} characters a tag may have"
        if _TAG.fullmatch(tag) is None:
            return "valid", "not a valid tag name"
        if is_fallback_tag(tag):
            return "referrers", "a referrers fallback tag, not an artifact"
        if include and not any(_matches(p, tag, budget) for p in include):
            return "include", "matches no include pattern"
        if versions is not None:
            version = parse_tag_version(tag)
            if version is None:
                return "semver", "not a SemVer version (MAJOR.MINOR.PATCH, optional leading v)"
            if not versions.matches(version):
                if version.prerelease is not None and versions.matches_ignoring_prereleases(version):
                    return "semver", f"a prerelease, which range {versions.text!r} does not name"
                return "semver", f"outside range {versions.text!r}"
        for pattern in exclude:
            if _matches(pattern, tag, budget):
                return "exclude", f"matches exclude pattern {pattern.text!r}"
        return None

    def to_json(self) -> dict[str, Any]:
        """``{"include": [...], "semver": ..., "exclude": [...], "latest": N}``, unset fields left out."""
        data: dict[str, Any] = {"include": list(self.include), "semver": self.semver,
                                "exclude": list(self.exclude), "latest": self.latest}
        return {key: value for key, value in data.items() if value not in (None, [])}

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> TagFilter:
        """The filter from its JSON; UsageError naming the field by JSON path under ``path``
        (``properties.tags`` gives ``properties.tags.include[1]: ...``)."""
        def where(name: str) -> str:
            return f"{path}.{name}" if path else name

        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise UsageError(f"{path or 'filter'}: must be a JSON object")
        for key in data:
            if key not in _FIELDS:
                raise UsageError(f"{where(str(key))}: unknown field (a tag filter has {', '.join(_FIELDS)})")
        try:
            return cls(include=tuple(string_list(data.get("include"), where("include"))),
                       semver=string(data.get("semver"), where("semver"), required=False, max_length=256),
                       exclude=tuple(string_list(data.get("exclude"), where("exclude"))), latest=data.get("latest"))
        except FilterFieldError as exc:
            raise UsageError(f"{where(exc.field)}: {exc.problem}") from exc


def _sorted_selection(tags: list[str]) -> tuple[str, ...]:
    if all(parse_tag_version(t) is not None for t in tags):
        return tuple(sorted(tags, key=version_key))
    return tuple(sorted(tags))


def _matches(pattern: TagPattern, tag: str, budget: MatchBudget | None) -> bool:
    try:
        return pattern.fullmatch(tag, budget)
    except PatternTimeout as exc:
        raise FilterFieldError(pattern.where, str(exc).split(": ", 1)[1]) from None


def _patterns(patterns: tuple[str, ...], name: str) -> tuple[TagPattern, ...]:
    if len(patterns) > MAX_PATTERNS:
        raise FilterFieldError(name, f"at most {MAX_PATTERNS} patterns (join alternatives with |)")
    return tuple(_pattern(p, f"{name}[{i}]") for i, p in enumerate(patterns))


def _pattern(pattern: Any, field: str) -> TagPattern:
    if not isinstance(pattern, str) or not pattern:
        raise FilterFieldError(field, "must be a non-empty regular expression")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise FilterFieldError(field, f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = TagPattern.compile(pattern, field)
    except UsageError as exc:
        raise FilterFieldError(field, str(exc).split(": ", 1)[1]) from None
    if nested_repetition(pattern):
        raise FilterFieldError(field, f"{pattern!r} repeats a group that can fill the repetition by itself "
                                      "(as (a+)+ or (\\w+-?)* do), which can take exponential time on a tag "
                                      "it does not match; write each repetition once, as \\w+(-\\w+)*")
    return compiled


def nested_repetition(pattern: str) -> bool:
    """Whether a repetition's body can be filled by one variable-width repetition alone, everything
    else in it optional: ``(a+)+``, ``(\\d+\\.?)*``, ``(?:a{1,3})+``. Not ``\\d+(\\.\\d+)*``, where each
    round starts with a dot. Read from the regex parser's tree; False where Python has none."""
    try:
        parser: Any = importlib.import_module("re._parser")
        return _walk(list(parser.parse(pattern)))
    except (ImportError, AttributeError, re.error, RecursionError, OverflowError):
        return False


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")


def _walk(items: list[Any]) -> bool:
    for op, av in items:
        name = str(op)
        if name in _REPEATS and av[1] > 1 and _fillable(list(av[2])):
            return True
        if any(_walk(list(child)) for child in _children(name, av)):
            return True
    return False


def _children(name: str, av: Any) -> list[Any]:
    if name in (*_REPEATS, "POSSESSIVE_REPEAT"):
        return [av[2]]
    if name == "SUBPATTERN":
        return [av[3]]
    if name == "BRANCH":
        return list(av[1])
    if name in ("ASSERT", "ASSERT_NOT"):
        return [av[1]]
    if name == "ATOMIC_GROUP":
        return [av]
    if name == "GROUPREF_EXISTS":
        return [av[1]] + ([av[2]] if av[2] is not None else [])
    return []


def _fillable(items: list[Any]) -> bool:
    """Some item varies in width by repeating, and every other item may match nothing."""
    return any(_variable(item) and all(_nullable(other) for j, other in enumerate(items) if j != i)
               for i, item in enumerate(items))


def _variable(item: Any) -> bool:
    name, av = str(item[0]), item[1]
    if name in _REPEATS:
        return bool(av[1] > av[0])
    if name == "SUBPATTERN":
        return _fillable(list(av[3]))
    if name == "BRANCH":
        return any(_fillable(list(branch)) for branch in av[1])
    return False


def _nullable(item: Any) -> bool:
    name, av = str(item[0]), item[1]
    if name in (*_REPEATS, "POSSESSIVE_REPEAT"):
        return av[0] == 0 or all(_nullable(x) for x in av[2])
    if name == "SUBPATTERN":
        return all(_nullable(x) for x in av[3])
    if name == "BRANCH":
        return any(all(_nullable(x) for x in branch) for branch in av[1])
    return name in ("AT", "ASSERT", "ASSERT_NOT")
