"""Progress of a Durable job whose batches run in sub-orchestrations.

An orchestrator waiting on its ``copy_batches`` children cannot change its own custom status until
they end, so each child reports its own (``{"batchesDone", "batches"}`` after every wave) and the
parent's status names them (``children: {"prefix", "count", "span", "batches"}``). Whoever reads a
run's progress (the HTTP API, ``ferry run``) reads the children's statuses too and :func:`combine`-s
them: the percentage then moves with every wave of every child.

Pure functions of JSON. May be imported by the orchestrations and the faces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def child_status(done: int, batches: int) -> dict[str, Any]:
    """A ``copy_batches`` child's custom status: ``done`` of its ``batches``."""
    return {"stage": "batches", "percentage": round(100 * done / batches) if batches else 100,
            "batchesDone": done, "batches": batches}


def children_field(prefix: str, count: int, total_batches: int, span: tuple[float, float]) -> dict[str, Any]:
    """What a parent's status says of its children: instance ids ``<prefix><n>`` for ``n < count``,
    holding ``total_batches`` in all, whose progress maps onto ``span`` (percent) of the parent's."""
    return {"prefix": prefix, "count": count, "batches": total_batches, "span": list(span)}


def child_ids(parent: Any) -> list[str]:
    """The instance ids of the children a parent's custom status names (none: an empty list)."""
    children = parent.get("children") if isinstance(parent, dict) else None
    if not isinstance(children, dict):
        return []
    return [f"{children['prefix']}{n}" for n in range(int(children.get("count", 0)))]


def combine(parent: Any, children: Iterable[Any]) -> Any:
    """``parent``'s status with its percentage (and ``batchesDone``) moved by what ``children`` report."""
    field = parent.get("children") if isinstance(parent, dict) else None
    if not isinstance(field, dict):
        return parent
    done = sum(int(c.get("batchesDone", 0)) for c in children if isinstance(c, dict))
    total = int(field.get("batches") or 0)
    start, end = field.get("span", [0, 100])
    percentage = end if total <= 0 else start + (end - start) * min(done, total) / total
    return {**parent, "percentage": max(0, min(100, round(percentage))), "batchesDone": done}
