"""Regular expressions a user gives, matched against tags within a time bound.

Python's ``re`` has no timeout, and a pattern such as ``(a|aa)+b`` takes exponential time on a tag
it does not match: a filter evaluated in a worker thread (as the Functions app does) could hold a
core for as long as it liked. :class:`TagPattern` matches with the ``regex`` package (compatible
with ``re`` syntax in its default V0 mode) and a timeout of :data:`MATCH_TIMEOUT` seconds per tag;
a pattern that runs out of time is refused with :class:`PatternTimeout`, naming the pattern, the
field it came from and the tag. Tags are at most 128 characters, so an honest pattern needs
microseconds. One selection's matches share a :class:`MatchBudget` as well (a second plus 100 µs
per tag): a pattern just under the limit on every tag would otherwise hold a core for the number of
tags times :data:`MATCH_TIMEOUT`, and a tag list may hold a million tags.

May be imported by any floor.
"""

from __future__ import annotations

import importlib
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import regex

from ferry.errors import UsageError

MATCH_TIMEOUT = 0.05
#: All the matches of one selection: TOTAL_TIMEOUT seconds plus TOTAL_PER_TAG per tag it looks at.
TOTAL_TIMEOUT, TOTAL_PER_TAG = 1.0, 0.0001


class PatternTimeout(UsageError):
    """A pattern took longer than :data:`MATCH_TIMEOUT` on one tag: it backtracks."""


#: Characters no tag holds, which ``re`` takes literally where the regex package reads a fuzzy
#: match (``(?:v1){e<=1}``) or a POSIX class (``[[:alpha:]]``, whose last ``]`` re takes literally).
_READ_OTHERWISE = frozenset(map(ord, "{}[]"))


def _literals(node: Any) -> Iterator[int]:
    """The characters ``re``'s parse tree asks for literally, outside character sets."""
    if isinstance(node, tuple) and len(node) == 2 and str(node[0]) in ("LITERAL", "IN"):
        if str(node[0]) == "LITERAL":
            yield node[1]
        return
    children = getattr(node, "data", node)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _literals(child)


#: The most a pattern may spell out with its counted repeats expanded, as the regex package does
#: when it compiles (``(?:x{65535}){65535}``, 19 characters, asked for 4 G characters of memory).
MAX_EXPANDED = 10_000
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _expanded(items: Any) -> int:
    """The items of ``re``'s parse tree once each counted repeat is written out its least number of
    times (an open or optional repeat counts once): what the regex package builds, near enough."""
    total = 0
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            total += max(int(av[0]), 1) * _expanded(av[2])
        elif name == "SUBPATTERN":
            total += _expanded(av[3])
        elif name == "BRANCH":
            total += sum(_expanded(branch) for branch in av[1])
        elif name in ("ASSERT", "ASSERT_NOT"):
            total += _expanded(av[1])
        elif name == "ATOMIC_GROUP":
            total += _expanded(av)
        elif name == "GROUPREF_EXISTS":
            total += _expanded(av[1]) + (_expanded(av[2]) if av[2] is not None else 0)
        else:
            total += 1
    return total


class MatchBudget:
    """The time every match of one selection over ``tags`` tags may take together, from now."""

    def __init__(self, tags: int) -> None:
        self.seconds = TOTAL_TIMEOUT + TOTAL_PER_TAG * tags
        self.deadline = time.monotonic() + self.seconds


@dataclass(frozen=True)
class TagPattern:
    """A pattern (``text``, from ``where``) that matches whole tags within :data:`MATCH_TIMEOUT`."""

    text: str
    where: str
    compiled: Any = field(repr=False, compare=False)

    @classmethod
    def compile(cls, text: str, where: str) -> TagPattern:
        """The pattern; UsageError naming ``where`` when it is not a regular expression."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # re's "possible nested set"
                re.compile(text)  # the grammar users are told about; regex alone accepts more
                tree = importlib.import_module("re._parser").parse(text)
            literal = next((chr(c) for c in _literals(tree) if c in _READ_OTHERWISE), None)
            size = _expanded(tree)
        except (re.error, RecursionError, OverflowError) as exc:
            raise UsageError(f"{where}: {text!r} is not a valid regular expression: {exc}") from exc
        if literal is not None:
            raise UsageError(f"{where}: {text!r} asks for a literal {literal!r}, which no tag holds (and which the "
                             "matcher would read as a fuzzy match '{e<=1}' or a POSIX class '[[:alpha:]]')")
        if size > MAX_EXPANDED:
            raise UsageError(f"{where}: {text!r} spells out {size} characters once its counted repeats are expanded "
                             f"(at most {MAX_EXPANDED}; a tag has at most 128): count less, or use + and *")
        try:
            compiled = regex.compile(text, flags=regex.VERSION0)
        except (regex.error, RecursionError, OverflowError) as exc:
            raise UsageError(f"{where}: {text!r} is not a valid regular expression: {exc}") from exc
        return cls(text, where, compiled)

    def fullmatch(self, tag: str, budget: MatchBudget | None = None) -> bool:
        """Whether the whole ``tag`` matches; PatternTimeout when it cannot tell in time (within
        :data:`MATCH_TIMEOUT`, and what is left of ``budget``)."""
        limit = MATCH_TIMEOUT
        timeout = limit if budget is None else min(limit, budget.deadline - time.monotonic())
        try:
            if timeout <= 0:
                raise TimeoutError
            return self.compiled.fullmatch(tag, timeout=timeout) is not None
        except TimeoutError:
            spent = (f"{budget.seconds:.1f} s in all on the tags of one selection" if timeout < limit and budget
                     else f"{limit * 1000:.0f} ms on tag {tag[:128]!r}")
            raise PatternTimeout(f"{self.where}: {self.text!r} took more than {spent}: it backtracks (overlapping or "
                                 "nested repeats such as (a|aa)+); rewrite it so each character can match one way"
                                 ) from None
