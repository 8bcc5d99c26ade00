"""NoForce is check-then-write: concurrent writers of one tag must not all claim it.

Ten copies of ten different images race to one target tag, without overwrite, each in its own
thread with its own client (as separate processes would). Registries have no conditional tag
write, so the engine checks the tag again just before writing and reads it back after: no copy
may report success for a digest the tag does not hold at the end.
"""

from __future__ import annotations

import threading

import pytest

from ferry.copy import copy_artifacts
from ferry.plan import CopyOptions, CopyReport, CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c

pytestmark = pytest.mark.fault

WRITERS = 10
ROUNDS = 5


@pytest.fixture(scope="module")
def ten_images(registry):
    """Ten different small images, each in its own source repository under tag v1: repo -> digest."""
    images = {}
    with c.registry_client(registry.url) as http:
        for n in range(WRITERS):
            image = c.oci_image([c.random_layer(3_000, 9_000 + n)], seed=900 + n)
            images[f"tagrace/src{n}"] = c.push(registry.url, f"tagrace/src{n}", image, tag="v1", client=http)
    return images


def race(registry, registry_b, repos: list[str], target: str, tag: str) -> list[CopyReport]:
    """Copy each of ``repos`` to ``target:tag`` at once; the reports in the order of ``repos``."""
    start = threading.Barrier(len(repos))
    reports: list[CopyReport | None] = [None] * len(repos)

    def writer(n: int) -> None:
        with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
            start.wait()
            reports[n] = copy_artifacts(RegistrySource(src), RegistryDestination(dst),
                                        [CopyRequest(repos[n], "v1", target, (tag,))], CopyOptions())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(repos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in reports)
    return reports  # type: ignore[return-value]


def test_concurrent_noforce_writers_never_claim_a_tag_they_lost(registry, registry_b, ten_images, unique_repo):
    repos = sorted(ten_images)
    claimed_wrongly, successes, results = [], [], []
    for round_ in range(ROUNDS):
        target = f"{unique_repo}/r{round_}"
        reports = race(registry, registry_b, repos, target, "race")
        final_digest = c.sha256_digest(c.get_manifest(registry_b.url, target, "race")[1])
        ok = [ten_images[repo] for repo, report in zip(repos, reports, strict=True) if report.ok]
        successes.append(len(ok))
        claimed_wrongly += [(round_, d) for d in ok if d != final_digest]
        results += [r.artifacts[0] for r in reports]
    assert claimed_wrongly == [], f"successes per round: {successes}; wrong claims: {len(claimed_wrongly)}"
    assert successes == [1] * ROUNDS, successes
    for artifact in results:  # the winner says it tagged; every loser names the tag and tagged nothing
        assert (artifact.ok, artifact.tagged) in ((True, ["race"]), (False, [])), artifact
        assert artifact.ok or f":race in {registry_b.host}" in (artifact.error or ""), artifact.error


def test_force_writer_that_is_overwritten_is_not_reported_as_tagged(registry, registry_b, ten_images, unique_repo):
    """With --force every writer replaces the tag; still only the one whose digest stays succeeds."""
    repos = sorted(ten_images)[:4]
    reports = []
    start = threading.Barrier(len(repos))

    def writer(repo: str) -> None:
        with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
            start.wait()
            reports.append((repo, copy_artifacts(
                RegistrySource(src), RegistryDestination(dst), [CopyRequest(repo, "v1", unique_repo, ("latest",))],
                CopyOptions(overwrite_tags=True))))

    threads = [threading.Thread(target=writer, args=(repo,)) for repo in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    final_digest = c.sha256_digest(c.get_manifest(registry_b.url, unique_repo, "latest")[1])
    assert [ten_images[repo] for repo, report in reports if report.ok] == [final_digest]
