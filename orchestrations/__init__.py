"""Durable orchestrators: schedule activities, fan out/in, report progress.

Deterministic only: no I/O, no wall clock (use context.current_utc_datetime),
no randomness (use context.new_uuid()).
"""
