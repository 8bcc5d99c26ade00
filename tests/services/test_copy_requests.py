"""Requests per artifact: a copy of small single-platform images, counted in front of real registries.

A `FaultProxy` (no fault armed) in front of each registry counts every request Ferry sends to it.
Redundant requests are gone: the manifest is read once (not again by digest) and written once (by
its tag), the referrers API is asked once per registry and run, and a registry that takes the
single-``POST`` upload gets one request per small blob. Distribution 2.8 lacks that form (it answers
202 and ignores the body): there Ferry falls back to POST + PUT, remembered for the run, and an
artifact costs 14 requests (17 before); behind `SinglePostRegistry` (the same registry, speaking
the single POST) it costs 12, plus the one referrers probe of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferry.copy import copy_artifacts
from ferry.plan import CopyOptions, CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.harness.faultproxy import FaultProxy
from tests.harness.singlepost import SinglePostRegistry

IMAGES = 5


@pytest.fixture(scope="module")
def small_images(registry) -> dict[str, str]:
    """Five distinct single-platform images (config + one layer) under tag v1: repo -> digest."""
    images = {}
    with c.registry_client(registry.url) as http:
        for n in range(IMAGES):
            image = c.oci_image([c.random_layer(4_000, 7_100 + n)], seed=710 + n)
            images[f"requests/src{n}"] = c.push(registry.url, f"requests/src{n}", image, tag="v1", client=http)
    return images


@pytest.fixture
def proxies(registry, registry_b) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    source, target = FaultProxy(registry.host), FaultProxy(registry_b.host)
    yield source, target
    source.stop()
    target.stop()


def retried(source: FaultProxy) -> int:
    """Requests a retried upload adds (a blob read again; the failed attempt, a HEAD and the new one
    sent): a transient fault on a loaded machine is not a request the design spends."""
    return 3 * sum(n - 1 for key, n in source.requests.items() if "/blobs/" in key and n > 1)


def copy_counted(proxies, requests: list[CopyRequest], options: CopyOptions | None = None) -> int:
    source, target = proxies
    source.reset_counters()
    target.reset_counters()
    with RegistryClient(source.host) as src, RegistryClient(target.host) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests, options)
    assert report.ok, [a.error for a in report.failed]
    return sum(source.requests.values()) + sum(target.requests.values())


def by_tag(small_images: dict[str, str], target: str) -> list[CopyRequest]:
    return [CopyRequest(repo, "v1", f"{target}/{n}", ("v1",)) for n, repo in enumerate(sorted(small_images))]


def assert_tagged(registry_url: str, small_images: dict[str, str], target: str) -> None:
    for n, repo in enumerate(sorted(small_images)):  # the tags name the verified source digests
        raw = c.get_manifest(registry_url, f"{target}/{n}", "v1")[1]
        assert c.sha256_digest(raw) == small_images[repo]


def test_small_images_cost_14_requests_each_on_distribution(registry_b, small_images, proxies, unique_repo):
    """14 per artifact, plus the run's one referrers probe."""
    total = copy_counted(proxies, by_tag(small_images, unique_repo))
    assert total <= 14 * IMAGES + 1 + retried(proxies[0]), (total, proxies[0].requests, proxies[1].requests)
    target = proxies[1]  # every blob went POST then PUT (a retried one more than once)
    assert min(target.count("/blobs/uploads/", "POST"), target.count("/blobs/uploads/", "PUT")) >= 2 * IMAGES
    assert_tagged(registry_b.url, small_images, unique_repo)


def test_small_images_cost_12_requests_each_where_the_single_post_upload_works(registry, registry_b, small_images,
                                                                               unique_repo):
    front = SinglePostRegistry(registry_b.host)
    counter = (FaultProxy(registry.host), FaultProxy(front.host))
    try:
        total = copy_counted(counter, by_tag(small_images, unique_repo))
        assert front.single_posts == 2 * IMAGES  # config and layer of each: one request, 201
    finally:
        counter[0].stop()
        counter[1].stop()
        front.stop()
    assert total <= 12 * IMAGES + 1 + retried(counter[0]), (total, counter[0].requests, counter[1].requests)
    assert counter[1].count("/blobs/uploads/", "PUT") == 0
    assert_tagged(registry_b.url, small_images, unique_repo)


def test_the_manifest_is_read_once_and_written_once(small_images, proxies, unique_repo):
    """GET by tag only (not again by digest); PUT by tag only (not first by digest)."""
    repo = sorted(small_images)[0]
    copy_counted(proxies, [CopyRequest(repo, "v1", unique_repo, ("v1",))])
    source, target = proxies
    assert source.count("/manifests/", "GET") == 2, source.requests  # v1, then the sha256-<hex> fallback tag
    assert source.count(f"/manifests/{small_images[repo]}", "GET") == 0, source.requests
    assert target.count("/manifests/", "PUT") == 1, target.requests
    assert target.count("/manifests/sha256:", "PUT") == 0, target.requests
    assert target.requests[f"PUT /v2/{unique_repo}/manifests/v1"] == 1, target.requests


def test_the_referrers_api_is_asked_once_per_registry_and_run(small_images, proxies, unique_repo):
    repos = sorted(small_images)
    copy_counted(proxies, [CopyRequest(repo, "v1", f"{unique_repo}/{n}", ("v1",)) for n, repo in enumerate(repos)])
    assert proxies[0].count("/referrers/", "GET") == 1, proxies[0].requests
    assert proxies[0].count("/manifests/sha256-", "GET") == IMAGES  # the tag fallback, for every artifact


def test_untagged_copies_still_put_by_digest(small_images, proxies, unique_repo):
    repo = sorted(small_images)[1]
    copy_counted(proxies, [CopyRequest(repo, small_images[repo], unique_repo, ())])
    assert proxies[1].requests[f"PUT /v2/{unique_repo}/manifests/{small_images[repo]}"] == 1, proxies[1].requests


def test_without_the_single_post_only_the_first_small_blob_probes_it(small_images, proxies, unique_repo):
    """One worker: the first upload's POST carries its bytes (202: they are PUT to that session), the
    answer is remembered, and every later POST is an empty one."""
    copy_counted(proxies, by_tag(small_images, unique_repo), CopyOptions(parallelism=1))
    target = proxies[1]
    assert 0 < target.body_bytes["POST"] <= 64 * 1024, target.body_bytes  # one small blob's bytes
    assert target.count("/blobs/uploads/", "POST") == target.count("/blobs/uploads/", "PUT") == 2 * IMAGES


def test_a_listed_repository_is_not_asked_for_fallback_tags_it_lacks(registry, small_images, proxies, unique_repo):
    """As with --all-tags: the tag list already says no sha256-<hex> tag exists, so none is fetched."""
    source, target = proxies
    repo = sorted(small_images)[2]
    with RegistryClient(source.host) as src, RegistryClient(target.host) as dst:
        registry_source = RegistrySource(src)
        assert registry_source.list_tags(repo) == ["v1"]
        report = copy_artifacts(registry_source, RegistryDestination(dst),
                                [CopyRequest(repo, "v1", unique_repo, ("v1",))])
    assert report.ok
    assert source.count("/manifests/sha256-", "GET") == 0, source.requests
