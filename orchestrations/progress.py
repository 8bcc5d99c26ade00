"""Custom status for progress: small JSON the HTTP API turns into ``progress.percentage``."""

from __future__ import annotations

from typing import Any


def status(stage: str, percentage: float, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "percentage": max(0, min(100, round(percentage))), **extra}


def scaled(done: int, total: int, start: float, end: float) -> float:
    """Where ``done`` of ``total`` lands between ``start`` and ``end`` percent."""
    return end if total <= 0 else start + (end - start) * done / total
