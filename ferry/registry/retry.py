"""Retry transient registry faults: one budget per operation, one layer of retries.

The rules:

1. **One budget per operation.** An operation is one call of the client's API: fetch a manifest,
   list tags, upload one blob, open one blob. It may try at most ``RetryPolicy.attempts`` times
   and start no new attempt once ``RetryPolicy.max_elapsed`` seconds have passed since it began
   (progress resets both: a chunked upload whose registry accepted bytes beyond the furthest
   offset any earlier attempt reached is not giving up; re-sending old ground is no progress).
   The budget lives in the running thread's context, so parallel operations never share one.
   A single attempt is bounded by the HTTP client's timeouts (connect and read are never None),
   so a stalled registry fails after about ``max_elapsed`` plus one read timeout.
2. **One layer.** Budgets do not nest. Code running inside an operation (the POST that opens
   an upload inside ``push_blob``, the source's GET that feeds a destination's upload, a chunk
   resumed from the registry's offset) retries where it failed, but from the operation's
   budget: :func:`with_retries` called inside an operation joins it instead of opening a new
   one. Attempts and time therefore never multiply, however deep the calls nest (before this
   rule, 5 upload attempts x 5 attempts per request, each waiting up to 60 s for a
   ``Retry-After``, made half an hour). Lookups that only inform a decision (the HEAD that
   checks whether a failed upload arrived after all, the DELETE of an abandoned session) are
   sent once and never retried.
3. **Waits.** Exponential backoff with jitter from ``base_delay`` up to ``max_delay``. A
   ``Retry-After`` is honoured when it fits: no longer than ``max_retry_after`` and what is left
   of the budget. A longer one ends the operation at once (waiting part of it and asking again
   early only spends the registry's patience): the error says how long the registry asked to
   wait, keeps it as ``retry_after``, and is permanent to every layer that retries blindly; a
   caller that can wait without holding compute (the sync orchestration's durable timer) uses it.
4. **Giving up says so.** The error raised when the budget is spent keeps the class (and so the
   exit code) of the last fault, and its message reads ``gave up after N attempts / S s: <last
   fault>``. Permanent errors (not found, denied, digest mismatch) are never retried.
5. **No layer above multiplies it.** A fault that outlasted the whole time budget comes out
   permanent: the Durable orchestrations retry transient activity failures (a registry
   restarting, attempts spent in a few seconds), and without this rule a registry answering 429
   for ten minutes would be retried for ten minutes once per activity attempt.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ferry.errors import FerryError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries within ``max_elapsed`` seconds; waits grow from ``base_delay``
    doubling up to ``max_delay``; a ``Retry-After`` is honoured up to ``max_retry_after``."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_elapsed: float = 120.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (0-based), before the budget's cap."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.max_delay, self.base_delay * (2 ** attempt)) * (0.5 + random.random() / 2)


class RetryBudget:
    """The attempts and time one operation has left; see the module's rules."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.began = self.started = time.monotonic()
        self.failures = 0  # failed attempts since the start or the last progress
        self.total_failures = 0
        self.spent: FerryError | None = None  # the error that ended the operation, once it ended

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining(self) -> float:
        return self.policy.max_elapsed - self.elapsed

    def progressed(self) -> None:
        """The operation moved forward (a registry accepted more bytes): its budget starts afresh."""
        self.started = time.monotonic()
        self.failures = 0

    def backoff(self, error: FerryError) -> None:
        """Account for a failed attempt: wait before the next one, or raise.

        Raises ``error`` itself when it is permanent, and a copy of it whose message starts with
        ``gave up after N attempts / S s`` when the attempts or the time are spent.
        """
        if self.spent is not None or not error.transient:
            raise error  # permanent, or the budget already ran out deeper in this operation
        self.failures += 1
        self.total_failures += 1
        if self.failures >= self.policy.attempts or self.remaining <= 0:
            self.spent = self.gave_up(error)
            raise self.spent
        may_wait = min(self.policy.max_retry_after, self.remaining)
        if error.retry_after is not None and error.retry_after > may_wait:
            self.spent = self.gave_up(error, f"the registry asked to wait {error.retry_after:.0f} s, longer than "
                                             f"this operation may wait ({may_wait:.0f} s)")
            self.spent.transient = False  # rule 3: not retried blindly; retry_after says when to ask again
            raise self.spent
        wait = min(self.policy.delay(self.failures - 1, error.retry_after), self.remaining)
        log.info("retrying %s in %.1fs after: %s", self.what, wait, error)
        time.sleep(wait)

    def gave_up(self, error: FerryError, why: str = "") -> FerryError:
        """``error`` with the budget's account (and ``why``) prefixed: same class and status; transient
        only if the time budget was not spent (rule 5)."""
        spent = copy.copy(error)
        spent.args = (f"gave up after {self.total_failures} attempt{'s' if self.total_failures != 1 else ''} / "
                      f"{time.monotonic() - self.began:.1f} s{f' ({why})' if why else ''}: {error}",)
        spent.__cause__ = error
        if self.elapsed >= self.policy.max_elapsed:
            spent.transient = False  # it outlasted the whole budget: report it, retry nothing above
        return spent


_current: ContextVar[RetryBudget | None] = ContextVar("ferry_retry_budget", default=None)


@contextmanager
def operation(policy: RetryPolicy, what: str) -> Iterator[RetryBudget]:
    """The budget of the operation running in this context, or a new one for ``policy`` (rule 2)."""
    running = _current.get()
    if running is not None:
        yield running
        return
    budget = RetryBudget(policy, what)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None for anything else
    (``nan``, ``inf`` and negative numbers included)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def with_retries(action: Callable[[], T], policy: RetryPolicy, *, what: str) -> T:
    """Run ``action`` as one operation, retrying while it raises a transient :class:`FerryError`.

    Inside another operation it draws from that operation's budget (rule 2).
    """
    with operation(policy, what) as budget:
        while True:
            try:
                return action()
            except FerryError as exc:
                budget.backoff(exc)
