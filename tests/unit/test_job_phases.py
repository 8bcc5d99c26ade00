"""The job's phases on in-memory endpoints: plan → gates → transfer → finish.

The engine seam is driven directly (``copy_artifacts(..., review=...)``, ``apply_gates``,
``plan_copy``/``transfer_blobs``/``finish_copy``); the job phases (``run_job``, ``plan_job``,
``transfer_batch``, ``finish_job``) run with ``open_job_source``/``open_job_destination`` replaced
by the in-memory endpoints, since the real ones open transports from the spec's endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferry.azure.claims import FileClaimStore, MemoryClaimStore
from ferry.copy import copy_artifacts, finish_copy, plan_copy, transfer_blobs
from ferry.errors import FerryError, TransientError, TransientRegistryError
from ferry.jobs import phases
from ferry.jobs.endpoints import JobEnvironment
from ferry.jobs.gate import PlanGate, Refusal, apply_gates, was_refused
from ferry.jobs.phases import BatchOutcome, JobOutcome, PlanSummary, batch_failure, publishable
from ferry.jobs.spec import ExportRefs, JobOptions, JobSpec, RegistryEndpoint
from ferry.plan import ArtifactPlan, ArtifactResult, BlobBatchResult, CopyOptions, CopyPlan, CopyReport, CopyRequest
from tests.unit.memory import Content, MemoryDestination, MemorySource, image, index, referrer

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


@dataclass
class World:
    source: MemorySource
    destination: MemoryDestination
    web: Content  # a multi-arch index with a signature
    signature: Content
    tool: Content  # a single image sharing nothing with web

    def request(self, tag: str, target: str | None = None, tags: tuple[str, ...] | None = None) -> CopyRequest:
        repository = {"v1": "web", "2.0": "tool"}[tag]
        return CopyRequest(repository, tag, target or f"mirror/{repository}", (tag,) if tags is None else tags)


@pytest.fixture
def world() -> World:
    source = MemorySource()
    web = source.push("web", index(image("web-amd64", platform=AMD64), image("web-arm64", platform=ARM64)), "v1")
    signature = source.push("web", referrer(web))
    tool = source.push("tool", image("tool", layers=3), "2.0")
    return World(source, MemoryDestination(), web, signature, tool)


@dataclass
class Gate:
    """Refuses the artifacts ``refuse`` names a reason for; records what it saw."""

    name: str
    refuse: Callable[[ArtifactPlan], str | None] = lambda artifact: None
    on_review: Callable[[CopyPlan], None] = lambda plan: None
    reviewed: int = 0

    def review(self, plan: CopyPlan) -> list[Refusal]:
        self.reviewed += 1
        self.on_review(plan)
        return [Refusal(i, reason) for i, a in enumerate(plan.artifacts) if (reason := self.refuse(a))]


@dataclass
class FixedGate:
    """Returns the refusals it was given, whatever the plan."""

    name: str
    refusals: list[Refusal]

    def review(self, plan: CopyPlan) -> list[Refusal]:
        return self.refusals


def refuse_repository(repository: str, reason: str = "not on the allow list") -> Gate:
    return Gate("policy", lambda a: reason if a.request.source_repository == repository else None)


def run_gated(world: World, requests: list[CopyRequest], gates: Sequence[PlanGate], *,
              continue_on_errors: bool) -> CopyReport:
    options = CopyOptions(all_or_nothing=not continue_on_errors)
    return copy_artifacts(world.source, world.destination, requests, options,
                          review=lambda plan: apply_gates(plan, gates, options))


def stored_digests(destination: MemoryDestination) -> set[str]:
    return {d for repo in destination.blobs.values() for d in repo} | {
        d for repo in destination.manifests.values() for d in repo}


# --------------------------------------------------------------------------- gates at the engine seam


def test_refusal_without_continue_on_errors_writes_nothing(world: World) -> None:
    report = run_gated(world, [world.request("v1"), world.request("2.0")], [refuse_repository("tool")],
                       continue_on_errors=False)
    assert [a.status for a in report.artifacts] == ["failed", "failed"]
    assert report.artifacts[1].error == "refused by policy: not on the allow list"
    assert "a gate refused another artifact" in (report.artifacts[0].error or "")
    # Only the refused one counts as refused; the one held back because of it does not.
    assert [was_refused(a) for a in report.artifacts] == [False, True]
    assert world.destination.untouched and world.destination.writes == []
    assert world.source.blob_reads == []
    assert report.blobs_total == 0 and report.bytes_uploaded == 0


def test_refusal_with_continue_on_errors_copies_the_others(world: World) -> None:
    report = run_gated(world, [world.request("v1"), world.request("2.0")], [refuse_repository("tool")],
                       continue_on_errors=True)
    assert [a.status for a in report.artifacts] == ["copied", "failed"]
    stored = stored_digests(world.destination)
    assert not stored & ({world.tool.digest} | set(world.tool.blobs))  # nothing of the refused artifact
    assert "mirror/tool" not in world.destination.tags and "mirror/tool" not in world.destination.blobs
    assert {world.web.digest, world.signature.digest} | set(world.web.blobs) <= stored
    assert world.destination.tags["mirror/web"]["v1"].digest == world.web.digest
    assert world.destination.commits == 1


def test_blobs_of_a_refused_artifact_stay_when_another_needs_them(world: World) -> None:
    requests = [world.request("2.0", "mirror/tool", ("stable",)), world.request("2.0", "mirror/tool", ("2.0",))]
    gate = Gate("policy", lambda a: "no stable tags" if a.request.target_tags == ("stable",) else None)
    report = run_gated(world, requests, [gate], continue_on_errors=True)
    assert [a.status for a in report.artifacts] == ["failed", "copied"]
    assert set(world.destination.blobs["mirror/tool"]) == set(world.tool.blobs)
    assert set(world.destination.tags["mirror/tool"]) == {"2.0"}


@pytest.mark.parametrize("continue_on_errors", [False, True])
@pytest.mark.parametrize("artifact", [2, 99, -1])
def test_refusing_an_artifact_the_plan_lacks_raises(world: World, artifact: int, continue_on_errors: bool) -> None:
    gate = FixedGate("broken", [Refusal(artifact, "whatever")])
    with pytest.raises(FerryError, match=f"gate broken refused artifact #{artifact}, which the plan lacks"):
        run_gated(world, [world.request("v1"), world.request("2.0")], [gate], continue_on_errors=continue_on_errors)
    assert world.destination.untouched


def test_a_gate_sees_the_whole_plan_before_a_byte_moves(world: World) -> None:
    seen: dict[str, Any] = {}

    def look(plan: CopyPlan) -> None:
        web, tool = plan.artifacts
        assert web.root is not None
        seen.update(
            untouched=world.destination.untouched, reads=list(world.source.blob_reads),
            root=(web.root.digest, web.root.media_type, web.root_raw),
            manifests={d.digest for d, _ in web.manifests},
            blobs={d: b.size for d, b in web.blobs.items()} | {d: b.size for d, b in tool.blobs.items()},
            platforms=web.result.platforms,
            referrers=[(s.digest, r.digest, r.artifact_type) for s, r in web.referrer_links],
            bytes_total=plan.bytes_total, placements=set(plan.placements))

    gate = Gate("observer", on_review=look)
    report = run_gated(world, [world.request("v1"), world.request("2.0")], [gate], continue_on_errors=False)
    assert report.ok and gate.reviewed == 1
    assert seen["untouched"] and seen["reads"] == []
    assert seen["root"] == (world.web.digest, world.web.descriptor.media_type, world.web.raw)
    assert seen["manifests"] == {d.digest for d, _ in world.web.manifests} | {world.signature.digest}
    every_blob = world.web.blobs | world.signature.blobs | world.tool.blobs
    assert seen["blobs"] == {d: len(b) for d, b in every_blob.items()}
    assert seen["platforms"] == ["linux/amd64", "linux/arm64"]
    assert seen["referrers"] == [(world.web.digest, world.signature.digest, "application/vnd.example.signature")]
    assert seen["bytes_total"] == sum(len(b) for b in every_blob.values())
    assert seen["placements"] == set(every_blob)
    # and what it saw is what was written, byte for byte
    assert world.destination.manifests["mirror/web"] == {d.digest: raw for d, raw in
                                                         world.web.manifests + world.signature.manifests}


def test_apply_gates_returns_messages_and_skips_failed_artifacts(world: World) -> None:
    options = CopyOptions(all_or_nothing=False)
    plan = plan_copy(world.source, world.destination,
                     [world.request("v1"), CopyRequest("tool", "missing", "t", ("x",)), world.request("2.0")], options)
    assert plan.artifacts[1].failed  # unknown tag: failed while planning
    before = dict(plan.placements)
    everyone = Gate("all", lambda a: "closed")
    nobody = Gate("none")
    assert apply_gates(plan, [nobody], options) == [] and plan.placements == before
    messages = apply_gates(plan, [everyone], options)
    assert messages == ["web:v1: refused by all: closed", "tool:2.0: refused by all: closed"]
    assert plan.placements == {} and plan.live == []


# --------------------------------------------------------------------------- plan, batches, finish


def test_plan_in_batches_through_json_equals_one_copy(world: World) -> None:
    requests = [world.request("v1"), world.request("2.0")]
    options = CopyOptions(all_or_nothing=True)
    plan = CopyPlan.from_json(json.loads(json.dumps(plan_copy(world.source, world.destination, requests,
                                                              options).to_json())))
    batches = plan.batches(max_bytes=150, max_blobs=3)
    assert len(batches) > 2 and sorted(d for b in batches for d in b) == sorted(plan.placements)
    assert all(len(b) <= 3 for b in batches)
    merged = BlobBatchResult()
    for batch in batches:
        merged.merge(BlobBatchResult.from_json(json.loads(json.dumps(
            transfer_blobs(world.source, world.destination, plan, batch, options).to_json()))))
    assert world.destination.written("manifest") == [] and world.destination.written("tag") == []
    report = finish_copy(world.destination, plan, merged, options)
    assert report.ok and report.blobs_uploaded == len(plan.placements)

    direct = MemoryDestination()
    assert copy_artifacts(world.source, direct, requests, options).ok
    assert (direct.blobs, direct.manifests, direct.tags, direct.referrer_records) == (
        world.destination.blobs, world.destination.manifests, world.destination.tags,
        world.destination.referrer_records)


def test_write_order_is_blobs_manifests_referrers_tags(world: World) -> None:
    assert copy_artifacts(world.source, world.destination, [world.request("v1")]).ok
    kinds = [kind for kind, _, _ in world.destination.writes]
    assert kinds == sorted(kinds, key=["blob", "manifest", "referrer", "tag"].index)
    manifests = [key for kind, _, key in world.destination.writes if kind == "manifest"]
    assert manifests.index(world.web.digest) > max(manifests.index(d.digest) for d, _ in world.web.manifests[:-1])


def test_a_rerun_moves_only_what_is_missing(world: World) -> None:
    assert copy_artifacts(world.source, world.destination, [world.request("2.0")]).ok
    reads = len(world.source.blob_reads)
    again = copy_artifacts(world.source, world.destination, [world.request("2.0")])
    assert again.ok and again.blobs_uploaded == 0 and again.blobs_skipped == len(world.tool.blobs)
    assert len(world.source.blob_reads) == reads


@pytest.mark.parametrize("continue_on_errors", [False, True])
def test_corrupt_source_blob_fails_its_artifact_only(world: World, continue_on_errors: bool) -> None:
    layer = next(iter(world.tool.blobs))
    world.source.blobs[layer] = b"tampered" + world.source.blobs[layer][8:]
    report = copy_artifacts(world.source, world.destination, [world.request("v1"), world.request("2.0")],
                            CopyOptions(all_or_nothing=not continue_on_errors))
    assert report.artifacts[1].status == "failed" and layer in (report.artifacts[1].error or "")
    assert layer not in stored_digests(world.destination)
    assert report.artifacts[0].ok is continue_on_errors
    assert world.destination.written("tag") == ([("mirror/web", "v1")] if continue_on_errors else [])


# --------------------------------------------------------------------------- the job phases


SPEC = JobSpec(RegistryEndpoint("source.example"), RegistryEndpoint("target.example"),
               (ExportRefs(("web:v1", "tool:2.0")),), JobOptions(batch_max_blobs=4))


@pytest.fixture
def opened(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The phases open the world's in-memory source and destination, whatever the endpoints say."""
    def open_source(endpoint: Any, env: Any, stack: Any, parallelism: int = 8) -> MemorySource:
        assert endpoint == SPEC.source
        return world.source

    def open_destination(endpoint: Any, env: Any, stack: Any, parallelism: int = 8) -> MemoryDestination:
        assert endpoint == SPEC.destination
        return world.destination

    monkeypatch.setattr(phases, "open_job_source", open_source)
    monkeypatch.setattr(phases, "open_job_destination", open_destination)
    return world


def with_options(**changes: Any) -> JobSpec:
    options = JobOptions(**{**SPEC.options.__dict__, **changes})
    return JobSpec(SPEC.source, SPEC.destination, SPEC.select, options)


@pytest.mark.parametrize("continue_on_errors", [False, True])
def test_run_job_with_a_refusing_gate(opened: World, continue_on_errors: bool) -> None:
    outcome = phases.run_job(with_options(continue_on_errors=continue_on_errors), JobEnvironment(),
                             gates=[refuse_repository("web", "unsigned")])
    assert not outcome.ok
    assert outcome.report.artifacts[0].error == "refused by policy: unsigned"
    assert not stored_digests(opened.destination) & ({opened.web.digest} | set(opened.web.blobs))
    if continue_on_errors:
        assert outcome.report.artifacts[1].ok and set(opened.destination.tags) == {"tool"}
    else:
        assert opened.destination.untouched


def test_run_job_copies_everything(opened: World) -> None:
    outcome = phases.run_job(SPEC, JobEnvironment())
    assert outcome.ok and [a.target for a in outcome.report.artifacts] == ["web:v1", "tool:2.0"]
    assert opened.destination.tags["web"]["v1"].digest == opened.web.digest
    assert outcome.published is None and outcome.deleted_source is None


@pytest.mark.parametrize("store", ["memory", "files"])
def test_plan_transfer_finish_through_claims(opened: World, store: str, tmp_path: Path) -> None:
    claims = MemoryClaimStore() if store == "memory" else FileClaimStore(tmp_path / "claims")
    env = JobEnvironment(claims=claims)
    summary = phases.plan_job(SPEC, env, "runs/r1")
    every_blob = opened.web.blobs | opened.signature.blobs | opened.tool.blobs
    assert (summary.prefix, summary.artifacts, summary.blobs, summary.refused) == ("runs/r1", 2, len(every_blob), [])
    assert summary.bytes == sum(len(b) for b in every_blob.values())
    assert summary.batches == len(claims.get_json("runs/r1/batches.json")) == -(-len(every_blob) // 4)
    assert opened.destination.untouched
    outcomes = [phases.transfer_batch(SPEC, env, "runs/r1", i) for i in range(summary.batches)]
    outcomes = [BatchOutcome.from_json(json.loads(json.dumps(o.to_json()))) for o in outcomes]
    assert all(o.error is None and o.result is not None and not o.result.errors for o in outcomes)
    assert opened.destination.written("tag") == []
    outcome = phases.finish_job(SPEC, env, "runs/r1")  # outcomes come from the batches' claims
    assert outcome.ok and set(opened.destination.tags) == {"web", "tool"}
    # job (whole, and for batches), plan, batches, and a slice and an outcome per batch
    assert claims.delete_prefix("runs/r1/") == 4 + 2 * summary.batches


def test_plan_job_with_a_gate_records_refusals(opened: World) -> None:
    env = JobEnvironment()
    summary = phases.plan_job(with_options(continue_on_errors=True), env, "p", [refuse_repository("tool")])
    assert summary.refused == ["tool:2.0: refused by policy: not on the allow list"]
    assert summary.blobs == len(opened.web.blobs | opened.signature.blobs)
    assert opened.destination.untouched


def test_a_batch_that_failed_fails_the_artifacts_needing_it(opened: World) -> None:
    env = JobEnvironment()
    spec = with_options(continue_on_errors=True, batch_max_blobs=1)
    summary = phases.plan_job(spec, env, "p")
    batches = env.claims.get_json("p/batches.json")
    failing = next(i for i, b in enumerate(batches) if b[0] in opened.tool.blobs)
    for i in range(summary.batches):
        if i != failing:
            phases.transfer_batch(spec, env, "p", i)
    outcome = phases.finish_job(spec, env, "p", {failing: "lost https://a.blob.core.windows.net/c/x?sig=SECRET"})
    assert [a.status for a in outcome.report.artifacts] == ["copied", "failed"]
    assert "sig=REDACTED" in (outcome.report.artifacts[1].error or "")
    assert "SECRET" not in json.dumps(outcome.to_json())


def test_transfer_batch_outcomes(opened: World, monkeypatch: pytest.MonkeyPatch) -> None:
    env = JobEnvironment()
    phases.plan_job(SPEC, env, "p")
    missing = phases.transfer_batch(SPEC, env, "elsewhere", 0)  # no plan claim: the batch fails as a whole
    assert missing.result is None and "elsewhere/batch-0.json" in (missing.error or "")

    def unreachable(*args: Any) -> Any:
        raise TransientRegistryError("connection reset")

    monkeypatch.setattr(opened.source, "open_blob", unreachable)
    with pytest.raises(TransientError, match="failed transiently"):
        phases.transfer_batch(SPEC, env, "p", 0)
    assert opened.destination.untouched


def test_plan_job_is_transient_when_the_source_is(opened: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any) -> Any:
        raise TransientRegistryError("503 from the registry")

    monkeypatch.setattr(opened.source, "resolve", unreachable)
    with pytest.raises(TransientError, match="planning web:v1: 503"):
        phases.plan_job(SPEC, JobEnvironment(), "p")


# --------------------------------------------------------------------------- results as JSON


def roundtrip(value: Any) -> Any:
    return type(value).from_json(json.loads(json.dumps(value.to_json())))


def test_plan_summary_round_trip() -> None:
    summary = PlanSummary("runs/x", 3, 10, 12345, 2, ["a:1: refused by g: r"])
    assert roundtrip(summary) == summary
    assert roundtrip(PlanSummary("p", 0, 0, 0, 0)) == PlanSummary("p", 0, 0, 0, 0)


def test_batch_outcome_round_trip() -> None:
    result = BlobBatchResult(errors={"sha256:" + "a" * 64: "mismatch"}, transient=["sha256:" + "b" * 64],
                             uploaded=3, mounted=1, skipped=2, bytes_uploaded=99)
    for outcome in (BatchOutcome(4, result), BatchOutcome(0), BatchOutcome.failed(2, "gone")):
        assert roundtrip(outcome) == outcome
    assert roundtrip(BatchOutcome(4, result)).result == result


def test_batch_failure_is_redacted_and_short() -> None:
    failed = BatchOutcome.failed(1, "PUT https://acct.blob.core.windows.net/c/a.tar?sv=2024&sig=abc%2Bdef failed")
    assert failed.error == "PUT https://acct.blob.core.windows.net/c/a.tar?sv=2024&sig=REDACTED failed"
    assert BatchOutcome.failed(1, "").error == "the batch failed after its retries"
    data = batch_failure(3, "first line ?sig=s3cret\nTraceback (most recent call last):\n  ...")
    assert data == {"index": 3, "result": None, "error": "first line ?sig=REDACTED"}


def test_job_outcome_round_trip(world: World) -> None:
    report = copy_artifacts(world.source, world.destination,
                            [world.request("v1"), CopyRequest("tool", "nope", "tool", ("nope",))])
    outcome = JobOutcome(report, published="https://a.blob.core.windows.net/c/x.tar",
                         catalog_digest="sha256:" + "c" * 64, blocks_staged=4, blocks_skipped=1)
    data = json.loads(json.dumps(outcome.to_json()))
    assert data["report"]["ok"] is False and data["report"]["artifacts"][1]["status"] == "failed"
    again = JobOutcome.from_json(data)
    assert again == outcome and not again.ok
    assert again.report.artifacts[0].platforms == ["linux/amd64", "linux/arm64"]


def result(status: str) -> ArtifactResult:
    return ArtifactResult("s", "t", status=status)


@pytest.mark.parametrize(("statuses", "continue_on_errors", "expected"), [
    (["copied", "copied"], False, True),
    (["copied", "copied"], True, True),
    (["copied", "failed"], False, False),
    (["copied", "failed"], True, True),
    (["failed", "failed"], True, False),
    (["failed"], False, False),
])
def test_publishable(statuses: list[str], continue_on_errors: bool, expected: bool) -> None:
    report = CopyReport(artifacts=[result(s) for s in statuses])
    assert publishable(report, continue_on_errors) is expected
