"""Durable orchestrators: schedule activities, fan out and in, report progress.

No I/O, no clock (``context.current_utc_datetime``), no randomness (``context.new_uuid()``).
Only transient faults are retried (``call_activity_with_retry``); activities return permanent
failures as ``{"error": ...}`` results, which become readable messages.

Imported by ``function_app`` only; import ``ferry`` for pure functions of JSON (results, outcomes),
never for I/O.
"""
