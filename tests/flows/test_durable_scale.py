"""Durable runs stay linear in their artifacts (issue 11): activity inputs carry a prefix and an
index, never the job; the archive layout is computed once, in planning, and each batch reads only
its slice; progress moves inside ``copy_batches`` sub-orchestrations. Through the local runner on the
real replay engine, with the real activities against Azurite and distribution."""

from __future__ import annotations

import json
import uuid

import pytest

from ferry.archive.stores import BlockBlobStore
from ferry.azure.claims import BlobClaimStore
from ferry.jobs.progress import child_ids, combine
from ferry.jobs.spec import ArchiveEndpoint, Artifacts, JobOptions, JobSpec, RegistryEndpoint
from ferry.plan import CopyRequest
from ferry.transports.archive import ArchiveDestination
from tests.flows.test_orchestrations import app_env, export_pipeline, runner  # noqa: F401 (fixtures)
from tests.harness import content as c
from tests.helpers import pipeline_run_input


def push_many(registry, repo: str, count: int, seed: int) -> list[str]:
    tags = []
    for n in range(count):
        image = c.oci_image([c.random_layer(300, seed * 1000 + n)], seed=seed * 1000 + n)
        c.push(registry.url, repo, image, tag=f"t{n}")
        tags.append(f"{repo}:t{n}")
    return tags


def activity_inputs(local) -> list[tuple[str, str]]:
    """(activity name, input JSON) of every activity scheduled by every instance."""
    return [(event["Name"], event["Input"]) for record in local.instances() for event in record.history
            if event.get("EventType") == 4]


@pytest.mark.parametrize("count", [2, 12])
def test_activity_inputs_carry_a_prefix_and_an_index_never_the_job(runner, app_env, registry, count):  # noqa: F811
    refs = push_many(registry, f"scale/inputs{count}", count, seed=count)
    result = runner.run("pipeline_run", pipeline_run_input(
        f"inputs{count}", "export", export_pipeline(app_env, registry, ["OverwriteBlobs"]),
        {"artifacts": refs, "target": {"name": f"inputs{count}.tar"}}))
    assert result.output["status"] == "Succeeded", result.output
    inputs = activity_inputs(runner)
    assert {name for name, _ in inputs} >= {"plan_job", "transfer_batch", "finish_job", "cleanup_claims"}
    for name, payload in inputs:
        if name == "plan_job":  # the one activity that gets the job (packed), and keeps it as a claim
            assert "packed" in json.loads(payload)["job"]
            continue
        assert "job" not in json.loads(payload) and refs[0] not in payload, (name, payload)
        assert len(payload) < 300, (name, len(payload))  # a bound that does not grow with the artifacts


def archive_job(env, registry, refs: list[str], name: str) -> dict:
    requests = tuple(CopyRequest(r.split(":")[0], r.split(":")[1], r.split(":")[0], (r.split(":")[1],)) for r in refs)
    return JobSpec(RegistryEndpoint(registry.host), ArchiveEndpoint(f"{env.container_url('acct1')}/{name}"),
                   (Artifacts(requests),), JobOptions(batch_max_blobs=1)).to_json()


def test_the_layout_is_computed_once_and_each_batch_reads_only_its_slice(runner, app_env, registry,  # noqa: F811
                                                                         monkeypatch):
    refs = push_many(registry, "scale/layout", 4, seed=40)  # 12 blobs and manifests: 8 blob batches
    laid_out, adopted, read = [], [], []
    lay_out, adopt, get_json = ArchiveDestination._lay_out, ArchiveDestination.adopt_layout, BlobClaimStore.get_json
    monkeypatch.setattr(ArchiveDestination, "_lay_out", lambda self, plan: laid_out.append(1) or lay_out(self, plan))
    monkeypatch.setattr(ArchiveDestination, "adopt_layout",
                        lambda self, layout: adopted.append(len(layout["entries"])) or adopt(self, layout))
    monkeypatch.setattr(BlobClaimStore, "get_json", lambda self, name: read.append(name) or get_json(self, name))
    listed: list[bool] = []
    begin = BlockBlobStore.begin
    monkeypatch.setattr(BlockBlobStore, "begin",
                        lambda self, layout, resume=True: listed.append(resume) or begin(self, layout, resume=resume))
    result = runner.run("copy_job", {"job": archive_job(app_env, registry, refs, "layout.tar"),
                                     "prefix": f"t/{uuid.uuid4().hex}"})
    assert result.status == "Completed" and result.output["outcome"]["report"]["ok"], result.output
    batches = result.output["outcome"]["report"]["blobs_total"]
    assert batches == 8
    assert laid_out == [1]  # planning; never a batch, never the finish
    # Each batch adopts its one entry; the finish the whole layout (oci-layout, index.json, blobs, manifests).
    assert sorted(adopted)[:batches] == [1] * batches and max(adopted) == 2 + 8 + 4 and len(adopted) == batches + 1
    assert [n.rsplit("/", 1)[1] for n in read].count("plan.json") == 1  # the finish only
    assert sum(n.endswith("/batches.json") for n in read) == 1
    # The whole job (its artifact list) is read by the finish; each batch reads the job without it.
    names = [n.rsplit("/", 1)[1] for n in read]
    assert names.count("job.json") == 1 and names.count("batch-job.json") == batches
    # A fresh archive: planning looked for blocks of an earlier attempt, found none, so no batch looks.
    assert listed == [True] + [False] * (batches + 1)


def test_progress_moves_with_every_wave_inside_sub_orchestrations(runner, app_env, registry, registry_b,  # noqa: F811
                                                                   monkeypatch):
    import orchestrations.copy_job as copy_job

    monkeypatch.setattr(copy_job, "INLINE_BATCHES", 2)
    monkeypatch.setattr(copy_job, "WAVE", 1)
    image = c.oci_image([c.random_layer(500, 8100 + i) for i in range(7)], seed=81)
    c.push(registry.url, "scale/progress", image, tag="v1")
    job = JobSpec(RegistryEndpoint(registry.host), RegistryEndpoint(registry_b.host),
                  (Artifacts((CopyRequest("scale/progress", "v1", "scale/progress", ("v1",)),)),),
                  JobOptions(batch_max_blobs=1)).to_json()
    result = runner.run("copy_job", {"job": job, "prefix": f"t/{uuid.uuid4().hex}"}, instance_id="progress-run")
    assert result.status == "Completed", result.error
    latest: dict[str, object] = {}
    seen: list[tuple[int, int]] = []
    for instance, status in runner.statuses:
        latest[instance] = status
        parent = latest.get("progress-run")
        shown = combine(parent, [latest.get(child) for child in child_ids(parent)])
        if isinstance(shown, dict) and shown.get("step") == "copying":
            seen.append((shown.get("batchesDone", 0), shown["percentage"]))
    # 8 batches in 4 children of 2, one batch per wave: a reader sees every batch land.
    assert sorted({done for done, _ in seen}) == list(range(9)), seen
    assert [p for _, p in seen] == sorted(p for _, p in seen)  # never backwards
    assert seen[-1][1] == 95  # the copying span ends where finishing starts
