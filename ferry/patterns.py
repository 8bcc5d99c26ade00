"""Regular expressions a user gives, matched against tags within a time bound.

Python's ``re`` has no timeout, and a pattern such as ``(a|aa)+b`` takes exponential time on a tag
it does not match: a filter evaluated in a worker thread (as the Functions app does) could hold a
core for as long as it liked. :class:`TagPattern` matches with the ``regex`` package (compatible
with ``re`` syntax in its default V0 mode) and a timeout of :data:`MATCH_TIMEOUT` seconds per tag;
a pattern that runs out of time is refused with :class:`PatternTimeout`, naming the pattern, the
field it came from and the tag. Tags are at most 128 characters, so an honest pattern needs
microseconds.

May be imported by any floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex

from ferry.errors import UsageError

MATCH_TIMEOUT = 0.05


class PatternTimeout(UsageError):
    """A pattern took longer than :data:`MATCH_TIMEOUT` on one tag: it backtracks."""


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
            re.compile(text)  # the grammar users are told about; regex alone accepts more
            compiled = regex.compile(text, flags=regex.VERSION0)
        except (re.error, regex.error, RecursionError, OverflowError) as exc:
            raise UsageError(f"{where}: {text!r} is not a valid regular expression: {exc}") from exc
        return cls(text, where, compiled)

    def fullmatch(self, tag: str) -> bool:
        """Whether the whole ``tag`` matches; PatternTimeout when it cannot tell in time."""
        try:
            return self.compiled.fullmatch(tag, timeout=MATCH_TIMEOUT) is not None
        except TimeoutError:
            raise PatternTimeout(f"{self.where}: {self.text!r} took more than {MATCH_TIMEOUT * 1000:.0f} ms on tag "
                                 f"{tag[:128]!r}: it backtracks (overlapping or nested repeats such as (a|aa)+); "
                                 "rewrite it so each character can match one way") from None
