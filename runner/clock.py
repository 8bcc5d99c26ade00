"""The orchestration clock: the time behind ``OrchestratorStarted`` timestamps and timer fire times.

Contract: ``now()`` is the wall clock plus the time skipped by timers fired early; it never goes
back, and ``advance_to`` only ever moves it forward. Thread-safe: every instance of one runner
shares one clock, read by several driver threads.

Who may import it: ``runner.replay`` (which owns the clock) and ``runner.scheduler`` (which reads
it and jumps it to fire timers early). Nothing outside ``runner/``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from runner.history import utc


class OrchestrationClock:
    """Orchestration time: wall clock plus the time skipped by timers fired early. Never goes back."""

    def __init__(self, start: datetime | None = None) -> None:
        now = datetime.now(UTC)
        self._offset = (utc(start) - now) if start is not None else timedelta(0)
        self._last = now + self._offset
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._last = max(self._last, datetime.now(UTC) + self._offset)
            return self._last

    def advance_to(self, moment: datetime) -> None:
        with self._lock:
            current = max(self._last, datetime.now(UTC) + self._offset)
            if moment > current:
                self._offset += moment - current
                self._last = moment
