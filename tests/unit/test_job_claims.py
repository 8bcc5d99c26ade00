"""What a Durable batch reads of its job (:mod:`ferry.jobs.claimed`): endpoints and options, not the
artifact list, whose parsing per batch made a 10,000-artifact run quadratic."""

from __future__ import annotations

import json

import pytest

from ferry.jobs.claimed import for_batches
from ferry.jobs.spec import ArchiveEndpoint, Artifacts, ExportRefs, JobOptions, JobSpec, RegistryEndpoint
from ferry.plan import CopyRequest


@pytest.mark.parametrize("count", [1, 3000])
def test_the_batch_spec_does_not_grow_with_the_artifacts(count: int) -> None:
    requests = tuple(CopyRequest(f"r{n // 20}", f"t{n}", f"r{n // 20}", (f"t{n}",)) for n in range(count))
    refs = tuple(f"127.0.0.1:5000/r{n // 20}:t{n}" for n in range(count))
    for select in (Artifacts(requests), ExportRefs(refs)):
        spec = JobSpec(RegistryEndpoint("127.0.0.1:5000"), ArchiveEndpoint("http://127.0.0.1:1/a/c/x.tar"),
                       (select, select), JobOptions(parallelism=3, batch_max_blobs=7))
        small = for_batches(spec)
        assert len(json.dumps(small.to_json())) < 700
        assert JobSpec.from_json(small.to_json()) == small
        assert (small.source, small.destination, small.options) == (spec.source, spec.destination, spec.options)
