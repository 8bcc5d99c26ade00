"""A hostile graph: indexes nested thousands deep end in a clear refusal, not a RecursionError."""

from __future__ import annotations

import pytest

from ferry.copy import MAX_DEPTH, copy_artifacts
from ferry.plan import CopyOptions, CopyRequest
from tests.unit.memory import MemoryDestination, MemorySource, image, index


def nested(depth: int):
    content = image("leaf", platform={"os": "linux", "architecture": "amd64"})
    for _ in range(depth):
        content = index(content)
    return content


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3000])
def test_a_graph_nested_too_deep_is_refused_by_name(depth):
    source, destination = MemorySource(), MemoryDestination()
    source.push("deep/app", nested(depth), "v1")
    report = copy_artifacts(source, destination, [CopyRequest("deep/app", "v1", "deep/app", ("v1",))],
                            CopyOptions(all_or_nothing=True))
    [result] = report.artifacts
    assert not result.ok and f"nested more than {MAX_DEPTH} levels" in (result.error or "")
    assert "RecursionError" not in (result.error or "")
    assert destination.tags == {} and destination.blobs == {}


def test_a_graph_at_the_limit_is_copied():
    source, destination = MemorySource(), MemoryDestination()
    source.push("deep/app", nested(MAX_DEPTH), "v1")
    report = copy_artifacts(source, destination, [CopyRequest("deep/app", "v1", "deep/app", ("v1",))])
    assert report.ok, report.artifacts[0].error
