"""The seam between plan and transfer: gates look at the whole plan before a byte moves.

After a job is planned (every artifact walked: index, manifests with their raw bytes, configs,
layers with sizes, platforms, referrers) and before any blob is transferred, each
:class:`PlanGate` reviews the :class:`~ferry.plan.CopyPlan` and may refuse artifacts, each with
a reason a person can act on. A refused artifact fails with ``refused by <gate>: <reason>``;
without ContinueOnErrors every other artifact is held back too. Nothing of a refused artifact is
written: its blobs leave the plan unless another artifact still needs them.

Gates run in the planning step of every path (the CLI's in-process run and the Durable
``plan_job`` activity), so a gate sees exactly the digests that would be written.

May be imported by ``ferry/jobs``, ``ferry/sync`` and the faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ferry.errors import FerryError
from ferry.plan import ArtifactResult, CopyOptions, CopyPlan, hold_back, place_blobs


@dataclass(frozen=True)
class Refusal:
    """Artifact ``artifact`` (an index into ``plan.artifacts``) may not be copied, because ``reason``."""

    artifact: int
    reason: str


class PlanGate(Protocol):
    """Reviews a plan; returns the artifacts it refuses (none: all may go)."""

    @property
    def name(self) -> str:
        """Who decided, as it appears in the refusal message."""
        ...

    def review(self, plan: CopyPlan) -> Sequence[Refusal]: ...


REFUSED_BY = "refused by "


def was_refused(result: ArtifactResult) -> bool:
    """Whether ``result`` failed because a gate refused it (not because copying it failed)."""
    return result.error is not None and result.error.startswith(REFUSED_BY)


def apply_gates(plan: CopyPlan, gates: Sequence[PlanGate], options: CopyOptions) -> list[str]:
    """Run every gate over the live artifacts of ``plan``; fail the refused ones (and, all-or-nothing,
    hold back the rest) and drop their blobs from the plan. Returns the refusal messages."""
    messages: list[str] = []
    for gate in gates:
        for refusal in gate.review(plan):
            if not 0 <= refusal.artifact < len(plan.artifacts):
                raise FerryError(f"gate {gate.name} refused artifact #{refusal.artifact}, which the plan lacks")
            artifact = plan.artifacts[refusal.artifact]
            if artifact.failed:
                continue
            message = f"{REFUSED_BY}{gate.name}: {refusal.reason}"
            artifact.fail(FerryError(message))
            messages.append(f"{artifact.result.source}: {message}")
    if messages:
        if options.all_or_nothing:
            hold_back(plan.live, "not copied: a gate refused another artifact (no ContinueOnErrors)")
        plan.placements = place_blobs(plan.live)
    return messages
