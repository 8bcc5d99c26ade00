"""Shared manifests in one run: each manifest digest is PUT once per target repository.

Five tags of one index, and an image together with one of its referrers, reach the same child
manifests several times in one run. The CNCF registry (distribution 2.8) answers concurrent PUTs of
one manifest with 400 DIGEST_INVALID / MANIFEST_BLOB_UNKNOWN in a good share of runs, so the engine
writes each (repository, digest) once, children before parents. A `FaultProxy` in front of the
target counts the PUTs the registry sees.
"""

from __future__ import annotations

from collections import Counter

import pytest

from ferry.copy import copy_artifacts
from ferry.plan import CopyOptions, CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.harness.faultproxy import FaultProxy
from tests.helpers import run_ferry

pytestmark = pytest.mark.fault

REPEATS = 15
TAGS = ("t1", "t2", "t3", "t4", "t5")


@pytest.fixture(scope="module")
def shared_source(registry, content):
    """multiarch (with signature and sbom referrers) under five tags in one source repository."""
    repos = c.push_samples(registry.url, content, prefix="shared")
    repo = repos["multiarch"]
    for tag in TAGS:
        c.push(registry.url, repo, content["multiarch"], tag=tag)
    return repo


@pytest.fixture
def proxy(registry_b):
    proxy = FaultProxy(registry_b.host)
    yield proxy
    proxy.stop()


def manifest_puts(proxy: FaultProxy, repo: str) -> Counter[str]:
    """PUTs per digest reference under ``repo`` (tag PUTs are not counted)."""
    prefix = f"PUT /v2/{repo}/manifests/sha256:"  # read once the run is over: no request in flight
    return Counter({key.rsplit("/", 1)[1]: n for key, n in proxy.requests.items() if key.startswith(prefix)})


def digests_of(content) -> set[str]:
    multiarch = content["multiarch"]
    return {m.digest for m in multiarch.all_manifests()} | {content["signature"].digest, content["sbom"].digest}


def test_five_tags_and_a_referrer_put_each_manifest_once(registry, proxy, content, shared_source, unique_repo):
    """Repeated to fresh repositories: every run succeeds and each digest is PUT exactly once."""
    failures, counts = [], Counter[int]()
    with RegistryClient(registry.host) as src, RegistryClient(proxy.host) as dst:
        for run in range(REPEATS):
            target = f"{unique_repo}/run{run}"
            requests = [CopyRequest(shared_source, tag, target, (tag,)) for tag in TAGS]
            requests.append(CopyRequest(shared_source, content["signature"].digest, target, ()))
            report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests,
                                    CopyOptions(all_or_nothing=True))
            if not report.ok:
                failures.append((run, [a.error for a in report.failed]))
            puts = manifest_puts(proxy, target)
            counts.update(puts.values())
            assert set(puts) == digests_of(content), puts
    assert failures == [], f"{len(failures)} of {REPEATS} runs failed: {failures[:3]}"
    assert counts == Counter({1: REPEATS * len(digests_of(content))}), f"PUTs per digest: {counts}"


def test_cli_all_tags_of_one_index_put_each_manifest_once(registry, proxy, content, shared_source, unique_repo, capsys):
    """`ferry copy --all-tags`: v1 and t1..t5 name one index; its manifests are PUT once each."""
    for run in range(5):
        target = f"{unique_repo}/cli{run}"
        result = run_ferry(capsys, "copy", f"{registry.host}/{shared_source}", f"{proxy.host}/{target}",
                           "--all-tags", "--json")
        assert result.code == 0, result.err + result.out
        assert len(result.json()["artifacts"]) == len(TAGS) + 1
        puts = manifest_puts(proxy, target)
        assert set(puts) == digests_of(content) and set(puts.values()) == {1}, puts
        assert sorted(c.list_tags(proxy.url, target)) == sorted(
            [*TAGS, "v1", c.referrers_tag(content["multiarch"].digest)])
