"""The runner's table of orchestration instances, safe to use from several threads.

Contract: one ``InstanceStore`` per runner holds every ``InstanceRecord`` by instance id. All
reads and writes of the table, and every change the driver makes to a record (``touch``), go
through one lock, so the client can read a record while a driver thread updates it. ``add``
refuses an id whose instance is still Pending/Running (``InstanceAlreadyExists``) and replaces a
finished one, as the host's default ``overridableExistingInstanceStates: NonRunningStates`` does;
``purge`` removes only finished instances. ``raise_event`` queues an external event on an active
instance's inbox (the driver moves it into the history) and ``take_events`` empties that inbox,
both under the lock, so an event is either refused or delivered, never lost in between.

Who may import it: ``runner.replay`` only (the runner's public methods front it).
"""

from __future__ import annotations

import threading
from typing import Any

from runner.clock import OrchestrationClock
from runner.records import ACTIVE_STATUSES, InstanceAlreadyExists, InstanceNotRunning, InstanceRecord


class InstanceStore:
    """Instance id -> ``InstanceRecord``, under one lock."""

    def __init__(self, clock: OrchestrationClock) -> None:
        self._clock = clock
        self._instances: dict[str, InstanceRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: InstanceRecord) -> None:
        with self._lock:
            existing = self._instances.get(record.instance_id)
            if existing is not None and existing.runtime_status in ACTIVE_STATUSES:
                raise InstanceAlreadyExists(
                    f"An Orchestration instance with the status {existing.runtime_status} already exists."
                )
            self._instances[record.instance_id] = record

    def get(self, instance_id: str) -> InstanceRecord | None:
        with self._lock:
            return self._instances.get(instance_id)

    def all(self) -> list[InstanceRecord]:
        with self._lock:
            return list(self._instances.values())

    def purge(self, instance_id: str) -> bool:
        """Forget a finished instance; False when it is unknown or still active."""
        with self._lock:
            record = self._instances.get(instance_id)
            if record is None or record.runtime_status in ACTIVE_STATUSES:
                return False
            del self._instances[instance_id]
            return True

    def raise_event(self, instance_id: str, name: str, input_json: str) -> None:
        """Queue an external event for an active instance.

        Raises ``KeyError`` for an unknown id (the host's 404) and ``InstanceNotRunning`` for an
        instance that has ended (the host's 410).
        """
        with self._lock:
            record = self._instances.get(instance_id)
            if record is None:
                raise KeyError(f"No instance with ID {instance_id} found.")
            if record.runtime_status not in ACTIVE_STATUSES:
                raise InstanceNotRunning(
                    f"Instance with ID {instance_id} is gone: either completed or failed ({record.runtime_status})"
                )
            record.inbox.append((name, input_json))
        record.wake.set()

    def take_events(self, record: InstanceRecord) -> list[tuple[str, str]]:
        """The events raised for ``record`` since the last call, oldest first."""
        with self._lock:
            taken, record.inbox = record.inbox, []
        return taken

    def touch(self, record: InstanceRecord, **changes: Any) -> None:
        """Set fields of ``record`` and its ``last_updated_time`` (orchestration clock)."""
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)
            record.last_updated_time = self._clock.now()
