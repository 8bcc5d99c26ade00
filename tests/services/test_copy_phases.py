"""The engine in phases, as Durable activities run it: plan, serialize, move blobs in batches, finish."""

from __future__ import annotations

import json

from ferry.copy import finish_copy, plan_copy, transfer_blobs
from ferry.plan import BlobBatchResult, CopyOptions, CopyPlan, CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.helpers import skopeo_raw


def test_phased_copy_through_json_matches_one_shot(registry, registry_b, content):
    repos = c.push_samples(registry.url, content, prefix="phased")
    requests = [CopyRequest(repos[k], "v1", f"phasedcopy/{k}", ("v1",)) for k in ("multiarch", "docker_list", "helm")]
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        source, destination = RegistrySource(src), RegistryDestination(dst)
        plan = plan_copy(source, destination, requests, CopyOptions())
        # Everything an orchestration would carry between activities survives JSON unchanged.
        revived = CopyPlan.from_json(json.loads(json.dumps(plan.to_json())))
        assert revived.to_json() == plan.to_json()
        batches = revived.batches(max_bytes=40_000, max_blobs=3)
        assert len(batches) > 1 and sorted(d for b in batches for d in b) == sorted(plan.placements)
        assert all(len(b) <= 3 for b in batches)
        total = BlobBatchResult()
        for batch in batches:  # each batch from a freshly revived plan, as separate activities would
            part = transfer_blobs(source, destination, CopyPlan.from_json(revived.to_json()), batch)
            total.merge(BlobBatchResult.from_json(json.loads(json.dumps(part.to_json()))))
        assert total.errors == {} and total.uploaded == len(plan.placements)
        report = finish_copy(destination, revived, total)
    assert report.ok, report.failed
    for kind in ("multiarch", "docker_list", "helm"):
        assert skopeo_raw(registry_b.host, f"phasedcopy/{kind}", "v1") == content[kind].raw


def test_finish_fails_artifacts_whose_blobs_failed(registry, registry_b, content):
    repos = c.push_samples(registry.url, content, prefix="phasefail")
    requests = [CopyRequest(repos["docker"], "v1", "phasefail/docker", ("v1",)),
                CopyRequest(repos["helm"], "v1", "phasefail/helm", ("v1",))]
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        destination = RegistryDestination(dst)
        plan = plan_copy(RegistrySource(src), destination, requests)
        docker_layer = content["docker"].blobs[-1].digest
        done = transfer_blobs(RegistrySource(src), destination, plan,
                              [d for d in plan.placements if d != docker_layer])
        done.errors[docker_layer] = "simulated: activity gave up"
        report = finish_copy(destination, plan, done, CopyOptions(all_or_nothing=False))
    status = {a.source: (a.status, a.error) for a in report.artifacts}
    assert status[f"{repos['helm']}:v1"] == ("copied", None)
    assert status[f"{repos['docker']}:v1"] == ("failed", "simulated: activity gave up")
    assert c.list_tags(registry_b.url, "phasefail/docker") == []
