"""The claims of a Durable job, under its prefix: what planning computes once, each batch's slice of
it, and what each batch did. Only the prefix and batch indexes travel through orchestration history.

Under ``<prefix>/``:

* ``job.json``: the JobSpec (activity inputs never carry it; it grows with the artifact list), read
  by the finish; ``batch-job.json``: the same without its selection (endpoints and options are what
  a batch needs), so a batch does not parse 10,000 artifacts to move 64 blobs.
* ``plan.json``, ``batches.json``: the whole plan and the digests of each batch, read by the finish.
* ``layout.json``: an archive destination's layout (every entry's offset), computed once in planning;
  ``part-plan.json``: what planning wrote of it (``oci-layout``, referrer fallback indexes).
* ``batch-<i>.json``: batch ``i``'s slice: its digests, their placements and layout entries. A batch
  reads this alone, however large the job.
* ``done-<i>.json``: batch ``i``'s outcome and, for an archive, the blocks it staged.

May be imported by :mod:`ferry.jobs.phases` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ferry.azure.claims import ClaimStore
from ferry.errors import BlobNotFoundError
from ferry.jobs.spec import Artifacts, ExportRefs, JobSpec
from ferry.plan import CopyPlan
from ferry.transports.archive import ArchiveDestination

#: Claims read or written at once (planning writes one per batch; the finish reads them back).
CLAIM_THREADS = 8


def spec_name(prefix: str, *, batch: bool = False) -> str:
    return f"{prefix}/batch-job.json" if batch else f"{prefix}/job.json"


def load_spec(claims: ClaimStore, prefix: str, *, batch: bool = False) -> JobSpec:
    """The job's spec; ``batch``: without its selection (but the first artifact), for a batch."""
    return JobSpec.from_json(claims.get_json(spec_name(prefix, batch=batch)))


def for_batches(spec: JobSpec) -> JobSpec:
    """``spec`` selecting one artifact: what a batch needs of it (endpoints, options) stays whole."""
    first = spec.select[0]
    if isinstance(first, Artifacts):
        first = Artifacts(first.requests[:1])
    elif isinstance(first, ExportRefs):
        first = ExportRefs(first.refs[:1])
    return dataclasses.replace(spec, select=(first,))


def store_plan(claims: ClaimStore, prefix: str, spec: JobSpec, plan: CopyPlan, batches: list[list[str]],
               layout: dict[str, Any] | None) -> None:
    """Keep the job, its plan and one slice per batch (placements and layout entries of its blobs)."""
    documents: dict[str, Any] = {spec_name(prefix): spec.to_json(), f"{prefix}/plan.json": plan.to_json(),
                                 spec_name(prefix, batch=True): for_batches(spec).to_json(),
                                 f"{prefix}/batches.json": batches}
    if layout is not None:
        documents[f"{prefix}/layout.json"] = layout
    for index, digests in enumerate(batches):
        placements = CopyPlan([], {d: plan.placements[d] for d in digests}).to_json()["placements"]
        documents[f"{prefix}/batch-{index}.json"] = {
            "digests": digests, "placements": placements,
            "layout": ArchiveDestination.layout_slice(layout, digests) if layout is not None else None}
    _each(lambda item: claims.put_json(*item), documents.items())


def load_batch(claims: ClaimStore, prefix: str, index: int) -> tuple[CopyPlan, list[str], dict[str, Any] | None]:
    """Batch ``index``'s slice: a plan holding only its placements, its digests, its layout entries."""
    data = claims.get_json(f"{prefix}/batch-{index}.json")
    plan = CopyPlan.from_json({"artifacts": [], "placements": data["placements"]})
    return plan, list(data["digests"]), data.get("layout")


def store_done(claims: ClaimStore, prefix: str, index: int, outcome: dict[str, Any],
               state: dict[str, Any] | None) -> None:
    claims.put_json(f"{prefix}/done-{index}.json", {"outcome": outcome, "state": state})


def load_done(claims: ClaimStore, prefix: str, indexes: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The ``done`` records of ``indexes`` that exist (a batch without one left no outcome)."""

    def load(index: int) -> tuple[int, dict[str, Any] | None]:
        try:
            return index, claims.get_json(f"{prefix}/done-{index}.json")
        except BlobNotFoundError:
            return index, None

    return {index: record for index, record in _each(load, indexes) if record is not None}


def _each(work: Any, items: Iterable[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=CLAIM_THREADS, thread_name_prefix="ferry-claims") as pool:
        return list(pool.map(work, items))
