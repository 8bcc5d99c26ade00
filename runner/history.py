"""Durable history events as the host writes them: event type numbers, builders and timestamps.

Contract: pure data, no SDK import and no state. Every event is a plain ``dict`` with the keys of
the Durable Task history schema (``EventType``, ``EventId``, ``IsPlayed``, ``Timestamp`` and the
type's own fields), ready for the ``history`` array of the context JSON. Timestamps are UTC in
``TIMESTAMP_FORMAT``; naive datetimes are taken as UTC.

Who may import it: any module of ``runner/`` (the driver, the scheduler, the client). Code outside
``runner/`` should not build histories by hand; ``TIMESTAMP_FORMAT`` and ``format_timestamp`` are
re-exported by ``runner.replay`` for callers that format times the way the host does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# HistoryEventType values (azure.durable_functions.models.history.HistoryEventType, the same
# numbers as DurableTask.Core's EventType).
EXECUTION_STARTED = 0
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_SENT = 14  # an event this orchestration sent to another one (not used by the runner)
EVENT_RAISED = 15  # an external event delivered to this orchestration: Name, Input (JSON text)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are taken as UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    return utc(value).strftime(TIMESTAMP_FORMAT)


def timespan(value: timedelta) -> str:
    """A .NET TimeSpan ``c`` string (``d.hh:mm:ss``), as the extension sends timer durations."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02}:{minutes:02}:{seconds:02}"


def event(event_type: int, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    """One history event; ``fields`` are the type's own keys (``EventId`` defaults to -1)."""
    built: dict[str, Any] = {"EventType": event_type, "EventId": -1, "IsPlayed": False,
                             "Timestamp": format_timestamp(timestamp)}
    built.update(fields)
    return built


def execution_started(
    timestamp: datetime, name: str, input_json: str | None, instance_id: str, execution_id: str,
    parent_instance_id: str | None,
) -> dict[str, Any]:
    """The ExecutionStarted event (the SDK requires its ``Version`` key) of a new generation."""
    return event(
        EXECUTION_STARTED, timestamp, Name=name, Version="", Input=input_json,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=(
            {"OrchestrationInstance": {"InstanceId": parent_instance_id}} if parent_instance_id else None
        ),
        Tags=None,
    )
