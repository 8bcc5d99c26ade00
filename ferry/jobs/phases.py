"""A job's phases, with one result type each: plan → (gates) → transfer batches → finish.

Two ways to run them, over the same rules:

* :func:`run_job` in one process (the CLI): open once, plan, review, move every blob, finish.
* :func:`plan_job`, :func:`transfer_batch` and :func:`finish_job`, one Durable activity each; the
  plan and its batches are kept as claims under a prefix and only names travel in history.

What is true of every job is written once, in :func:`_finish`: an archive is published only when
every artifact copied, or with ContinueOnErrors when at least one did; an archive source is
deleted (DeleteSourceBlobOnSuccess) only after every tag is verified in the target.

Failures: a phase raises only for the job as a whole (bad spec, unreachable endpoint); a
transient one is :class:`~ferry.errors.TransientError` (the activity is retried). A batch that
fails permanently, or after its retries, is a :class:`BatchOutcome` with an ``error``: every blob
it held failed with that message, and so did the artifacts that needed them.

May be imported by the faces (activities, CLI).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from ferry.archive.catalog import META_CATALOG
from ferry.azure.claims import ClaimUploadSessions
from ferry.copy import copy_artifacts, finish_copy, plan_copy, transfer_blobs
from ferry.errors import ConflictError, FerryError, NotFoundError, TransientError
from ferry.jobs import claimed
from ferry.jobs.endpoints import JobEnvironment, delete_archive_source, open_job_destination, open_job_source
from ferry.jobs.gate import PlanGate, apply_gates
from ferry.jobs.selection import expand
from ferry.jobs.spec import ArchiveEndpoint, JobSpec
from ferry.plan import ArtifactResult, BlobBatchResult, CopyPlan, CopyReport, CopyRequest, ProgressListener
from ferry.redact import redact
from ferry.transports.archive import ArchiveDestination, ArchiveSource
from ferry.transports.base import Destination, Source
from ferry.transports.registry import RegistryDestination


@dataclass
class PlanSummary:
    """What planning found: batch count and totals; refusals by gates."""

    prefix: str
    batches: int
    blobs: int
    bytes: int
    artifacts: int
    refused: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanSummary:
        return cls(**data)


@dataclass
class BatchOutcome:
    """One batch: its blob results, or ``error`` when the batch as a whole failed."""

    index: int
    result: BlobBatchResult | None = None
    error: str | None = None

    @classmethod
    def failed(cls, index: int, message: str) -> BatchOutcome:
        return cls(index, None, redact(message) or "the batch failed after its retries")

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "result": self.result.to_json() if self.result else None, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchOutcome:
        result = data.get("result")
        return cls(int(data["index"]), BlobBatchResult.from_json(result) if result else None, data.get("error"))


def batch_failure(index: int, message: str) -> dict[str, Any]:
    """The JSON of a batch that failed after its retries (for orchestrations, which hold only JSON)."""
    return BatchOutcome.failed(index, message.split("\n")[0]).to_json()


def pack(document: Any) -> dict[str, str]:
    """``document`` (JSON) deflated, for the two values of a job's history that grow with its artifact
    list: the spec ``plan_job`` keeps, and the outcome ``finish_job`` returns (a few hundred bytes per
    artifact, 1 MB of history at 3000). zlib is deterministic, so an orchestrator may pack on replay."""
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return {"packed": base64.b64encode(zlib.compress(raw, 6)).decode()}


def unpack(value: Any) -> Any:
    """The JSON :func:`pack` packed; anything else is returned as it is."""
    if isinstance(value, dict) and set(value) == {"packed"}:
        return json.loads(zlib.decompress(base64.b64decode(value["packed"])))
    return value


@dataclass
class JobOutcome:
    """A finished job: its report, the archive it published, the catalog digest it wrote or read,
    and the archive it deleted (display URLs: never a SAS)."""

    report: CopyReport
    published: str | None = None
    catalog_digest: str | None = None
    deleted_source: str | None = None
    #: Why DeleteSourceBlobOnSuccess kept the archive (it was rewritten after it was imported).
    kept_source: str | None = None
    blocks_staged: int | None = None
    blocks_skipped: int | None = None
    #: Parts of the selection that named nothing (a repository without a matching tag, among several).
    skipped: list[str] = field(default_factory=list)
    #: What gates refused, one message each (``refused by <gate>: <reason>``), before a byte moved.
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.skipped

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["report"]["ok"] = self.report.ok
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobOutcome:
        report = dict(data["report"])
        report.pop("ok", None)
        artifacts = [ArtifactResult(**a) for a in report.pop("artifacts")]
        return cls(**{**data, "report": CopyReport(artifacts=artifacts, **report)})


# --------------------------------------------------------------------------- in one process


def run_job(spec: JobSpec, env: JobEnvironment, *,
            gates: Sequence[PlanGate] | Callable[[Source], Sequence[PlanGate]] = (),
            progress: ProgressListener | None = None) -> JobOutcome:
    """Run the whole job here; never raises for a single artifact. ``gates`` may be a function of
    the opened source (a gate that reads configs or signatures from it)."""
    options = spec.copy_options(progress)
    with ExitStack() as stack:
        source = open_job_source(spec.source, env, stack, spec.options.parallelism)
        destination = open_job_destination(spec.destination, env, stack, spec.options.parallelism)
        skipped: list[str] = []
        requests = expand(spec.select, source, spec.options.max_artifacts, skipped)
        plan_seen: list[CopyPlan] = []

        refused: list[str] = []
        reviewers = gates(source) if callable(gates) else gates

        def review(plan: CopyPlan) -> None:
            plan_seen.append(plan)
            refused.extend(apply_gates(plan, reviewers, options))

        report = copy_artifacts(source, destination, requests, options, review=review)
        outcome = _finish(spec, env, source, destination, plan_seen[0], report)
        outcome.skipped = skipped
        outcome.refused = refused
        if isinstance(destination, ArchiveDestination):
            outcome.blocks_staged = getattr(destination.store, "blocks_staged", None)
            outcome.blocks_skipped = getattr(destination.store, "blocks_skipped", None)
    return outcome


# --------------------------------------------------------------------------- as Durable activities


def plan_job(spec: JobSpec, env: JobEnvironment, prefix: str, gates: Sequence[PlanGate] = ()) -> PlanSummary:
    """Walk the job, let ``gates`` review it, lay out an archive destination, and keep the job, its
    plan and one slice per batch as claims under ``prefix`` (:mod:`ferry.jobs.claimed`).

    An artifact that cannot be planned fails in the plan (reported at the finish); one that failed
    transiently makes the whole step transient, to be retried once the registry is back.
    """
    options = spec.copy_options()
    layout: dict[str, Any] | None = None
    with ExitStack() as stack:
        source = open_job_source(spec.source, env, stack, spec.options.parallelism)
        destination = open_job_destination(spec.destination, env, stack, spec.options.parallelism)
        plan = plan_copy(source, destination, expand(spec.select, source, spec.options.max_artifacts), options)
        transient = [a.result for a in plan.artifacts if a.transient]
        if transient:
            raise TransientError(f"planning {transient[0].source}: {transient[0].error}")
        refused = apply_gates(plan, gates, options)
        batches = plan.batches(max_bytes=spec.options.batch_max_bytes, max_blobs=spec.options.batch_max_blobs)
        if isinstance(destination, ArchiveDestination):  # the job's one layout; batches get slices of it
            destination.prepare(plan.write_plan())
            layout = destination.layout()
            env.claims.put_json(f"{prefix}/part-plan.json", destination.export_state())
    claimed.store_plan(env.claims, prefix, spec, plan, batches, layout)
    return PlanSummary(prefix, len(batches), len(plan.placements), plan.bytes_total, len(plan.artifacts), refused)


def load_spec(env: JobEnvironment, prefix: str, *, batch: bool = False) -> JobSpec:
    """The spec :func:`plan_job` kept under ``prefix`` (activity inputs carry the prefix, not the spec);
    ``batch``: without its selection, all :func:`transfer_batch` needs."""
    return claimed.load_spec(env.claims, prefix, batch=batch)


def transfer_batch(spec: JobSpec, env: JobEnvironment, prefix: str, index: int) -> BatchOutcome:
    """Move batch ``index`` of the stored plan, reading only that batch's slice, and keep its outcome.
    TransientError if any blob failed transiently (the retry skips what is done); a permanent
    failure of the batch as a whole is an outcome."""
    # An upload cut by a crash is resumed by the activity's next attempt, on whatever worker.
    env = dataclasses.replace(env, upload_sessions=ClaimUploadSessions(env.claims, f"{prefix}/uploads"))
    state: dict[str, Any] | None = None
    try:
        plan, digests, layout = claimed.load_batch(env.claims, prefix, index)
        with ExitStack() as stack:
            source = open_job_source(spec.source, env, stack, spec.options.parallelism)
            destination = open_job_destination(spec.destination, env, stack, spec.options.parallelism)
            if isinstance(destination, ArchiveDestination):
                if layout is None:
                    raise FerryError(f"batch {index}: the plan laid out no archive")
                destination.adopt_layout(layout)
            result = transfer_blobs(source, destination, plan, digests, spec.copy_options())
            if isinstance(destination, ArchiveDestination):
                state = destination.export_state()
    except FerryError as exc:
        if exc.transient:
            raise
        return BatchOutcome.failed(index, str(exc))
    if result.transient:
        first = result.transient[0]
        raise TransientError(f"batch {index}: {len(result.transient)} blob(s) failed transiently, "
                             f"e.g. {first}: {result.errors[first]}")
    outcome = BatchOutcome(index, result)
    claimed.store_done(env.claims, prefix, index, outcome.to_json(), state)
    return outcome


def finish_job(spec: JobSpec, env: JobEnvironment, prefix: str, failed: Mapping[int, str] | None = None) -> JobOutcome:
    """Write manifests and tags (or seal and publish the archive) from what the batches kept; a batch
    in ``failed`` (index -> message: it failed after its retries) fails every blob it held."""
    failed = dict(failed or {})
    plan = CopyPlan.from_json(env.claims.get_json(f"{prefix}/plan.json"))
    batches: list[list[str]] = env.claims.get_json(f"{prefix}/batches.json")
    done = claimed.load_done(env.claims, prefix, [i for i in range(len(batches)) if i not in failed])
    merged, states = BlobBatchResult(), []
    for index, digests in enumerate(batches):
        record = done.get(index)
        outcome = (BatchOutcome.from_json(record["outcome"]) if record is not None
                   else BatchOutcome.failed(index, failed.get(index) or f"batch {index} left no outcome"))
        if outcome.result is None:
            merged.errors.update({digest: str(outcome.error) for digest in digests})
            continue
        merged.merge(outcome.result)
        states.append(record["state"] if record is not None else None)
    with ExitStack() as stack:
        source = open_job_source(spec.source, env, stack, spec.options.parallelism)
        destination = open_job_destination(spec.destination, env, stack, spec.options.parallelism)
        if isinstance(destination, ArchiveDestination):
            destination.adopt_layout(env.claims.get_json(f"{prefix}/layout.json"))
            destination.import_state(env.claims.get_json(f"{prefix}/part-plan.json"))
            for state in states:
                if state is not None:
                    destination.import_state(state)
        report = finish_copy(destination, plan, merged, spec.copy_options())
        return _finish(spec, env, source, destination, plan, report)


# --------------------------------------------------------------------------- the rules of every job


def _finish(spec: JobSpec, env: JobEnvironment, source: Source, destination: Destination, plan: CopyPlan,
            report: CopyReport) -> JobOutcome:
    outcome = JobOutcome(report)
    if isinstance(destination, ArchiveDestination) and publishable(report, spec.options.continue_on_errors):
        destination.publish()
        outcome.published = spec.destination.display
        outcome.catalog_digest = destination.metadata.get(META_CATALOG)
    if isinstance(source, ArchiveSource):
        outcome.catalog_digest = source.catalog_digest
        endpoint = spec.source
        if (isinstance(endpoint, ArchiveEndpoint) and endpoint.delete_on_success and report.ok
                and isinstance(destination, RegistryDestination)):
            verify_imported(destination, source, [a.request for a in plan.artifacts])
            version = source.reader.version
            source.close()
            try:
                delete_archive_source(endpoint, env, version)
                outcome.deleted_source = endpoint.display
            except ConflictError as exc:  # another writer replaced it: that version was not imported
                outcome.kept_source = redact(f"kept {endpoint.display}: {exc}")
    return outcome


def publishable(report: CopyReport, continue_on_errors: bool) -> bool:
    """An archive is published when every artifact copied, or (ContinueOnErrors) when any did."""
    return report.ok or (continue_on_errors and any(a.ok for a in report.artifacts))


def verify_imported(destination: RegistryDestination, source: ArchiveSource, requests: list[CopyRequest]) -> None:
    """Raise unless every request's tag (or untagged root) is present in the target as in the archive."""
    for request in requests:
        expected = source.resolve(request.source_repository, request.source_reference)
        for tag in request.target_tags or (expected.digest,):
            found = destination.client.head_manifest(request.target_repository, tag)
            if found is None or found.digest != expected.digest:
                raise NotFoundError(f"{request.target_repository}:{tag} is not {expected.digest} in the target; "
                                    "the archive was kept")
