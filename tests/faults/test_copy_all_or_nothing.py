"""Without ContinueOnErrors nothing is tagged if any artifact fails, even when the failure comes
while writing manifests or from a bad tag name.

Every name is validated before the first write; every manifest of every artifact is written
before any referrer record or tag; a failure in those phases writes no tag at all (referrer
fallback tags included), and each result says which tags it wrote.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ferry.copy import copy_artifacts, finish_copy, plan_copy, transfer_blobs
from ferry.plan import CopyOptions, CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.harness.faultproxy import FaultProxy
from tests.helpers import run_ferry

KINDS = ("multiarch", "helm", "docker")


@pytest.fixture(scope="module")
def seeded(registry, content):
    return c.push_samples(registry.url, content, prefix="allornothing")


def all_tags(server_url: str, repos: list[str]) -> dict[str, list[str]]:
    return {repo: tags for repo in repos if (tags := c.list_tags(server_url, repo))}


@pytest.mark.fault
def test_manifest_failure_writes_no_tag(registry, registry_b, content, seeded, unique_repo):
    """The docker image's layer never reaches the target: its manifest PUT fails (MANIFEST_BLOB_UNKNOWN)
    after the other artifacts' blobs are in place. No tag, no referrer fallback tag, is written."""
    targets = {kind: f"{unique_repo}/{kind}" for kind in KINDS}
    requests = [CopyRequest(seeded[kind], "v1", targets[kind], ("v1", "stable")) for kind in KINDS]
    missing = content["docker"].blobs[-1].digest
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        source, destination = RegistrySource(src), RegistryDestination(dst)
        options = CopyOptions(all_or_nothing=True)
        plan = plan_copy(source, destination, requests, options)
        moved = transfer_blobs(source, destination, plan, [d for d in plan.placements if d != missing], options)
        report = finish_copy(destination, plan, moved, options)  # the lost blob is not reported: the PUT finds out
    assert all_tags(registry_b.url, list(targets.values())) == {}
    by_kind = dict(zip(KINDS, report.artifacts, strict=True))
    assert "MANIFEST_BLOB_UNKNOWN" in (by_kind["docker"].error or ""), by_kind["docker"].error
    for kind in ("multiarch", "helm"):
        assert "another artifact failed while writing manifests" in (by_kind[kind].error or "")
    assert [(a.status, a.tagged) for a in report.artifacts] == [("failed", [])] * len(KINDS)


@pytest.mark.fault
def test_manifest_failure_with_continue_on_errors_tags_the_rest(registry, registry_b, content, seeded, unique_repo):
    targets = {kind: f"{unique_repo}/{kind}" for kind in KINDS}
    requests = [CopyRequest(seeded[kind], "v1", targets[kind], ("v1",)) for kind in KINDS]
    missing = content["docker"].blobs[-1].digest
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        source, destination = RegistrySource(src), RegistryDestination(dst)
        plan = plan_copy(source, destination, requests)
        report = finish_copy(destination, plan, transfer_blobs(
            source, destination, plan, [d for d in plan.placements if d != missing]))
    assert [(a.status, a.tagged) for a in report.artifacts] == [("copied", ["v1"]), ("copied", ["v1"]),
                                                                ("failed", [])]
    assert all_tags(registry_b.url, list(targets.values())) == {
        targets["multiarch"]: sorted(["v1", c.referrers_tag(content["multiarch"].digest)]),
        targets["helm"]: ["v1"]}


@pytest.mark.bad_input
@pytest.mark.parametrize("bad", ["evil?x=1", "v2#frag", "v1\n", "caf\u00e9", ".hidden", "-x", "t" * 129, "a/b"])
def test_bad_tag_is_rejected_before_any_write(registry, registry_b, seeded, unique_repo, bad):
    proxy = FaultProxy(registry_b.host)  # sees every request the target gets
    try:
        requests = [CopyRequest(seeded["multiarch"], "v1", f"{unique_repo}/good", ("v1",)),
                    CopyRequest(seeded["helm"], "v1", f"{unique_repo}/bad", ("v1", bad))]
        with RegistryClient(registry.host) as src, RegistryClient(proxy.host) as dst:
            report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests,
                                    CopyOptions(all_or_nothing=True))
        writes = {key: n for key, n in proxy.requests.items() if not key.startswith(("GET ", "HEAD "))}
    finally:
        proxy.stop()
    assert writes == {}
    good, wrong = report.artifacts
    assert f"target tag {bad!r} is not a valid tag" in (wrong.error or ""), wrong.error
    assert "another artifact failed while planning" in (good.error or "")
    assert all_tags(registry_b.url, [f"{unique_repo}/good", f"{unique_repo}/bad"]) == {}


@pytest.mark.bad_input
def test_bad_repository_is_rejected_before_any_write(registry, registry_b, seeded, unique_repo):
    requests = [CopyRequest(seeded["helm"], "v1", f"{unique_repo}/good", ("v1",)),
                CopyRequest(seeded["docker"], "v1", f"{unique_repo}/Bad\n", ("v1",))]
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests,
                                CopyOptions(all_or_nothing=True))
    assert all_tags(registry_b.url, [f"{unique_repo}/good"]) == {}
    assert "is not a valid repository name" in (report.artifacts[1].error or "")


@pytest.mark.bad_input
def test_one_tag_for_two_manifests_in_one_run_is_a_conflict(registry, registry_b, seeded, unique_repo):
    requests = [CopyRequest(seeded["helm"], "v1", unique_repo, ("v1",)),
                CopyRequest(seeded["docker"], "v1", unique_repo, ("v1",))]
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests,
                                CopyOptions(overwrite_tags=True))
    assert c.list_tags(registry_b.url, unique_repo) == []
    assert [a.status for a in report.artifacts] == ["failed", "failed"]
    conflict = f"{unique_repo}:v1 would name different manifests in one run"
    assert all(conflict in (a.error or "") for a in report.artifacts)


def _rename_in_index(archive: Path, target: Path, old: str, new: str) -> None:
    """Copy the tar with one ``org.opencontainers.image.ref.name`` in index.json renamed."""
    with tarfile.open(archive, "r:") as src, tarfile.open(target, "w:", format=tarfile.USTAR_FORMAT) as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "index.json":
                index = json.loads(data)
                for entry in index["manifests"]:
                    names = entry.get("annotations", {})
                    if names.get("org.opencontainers.image.ref.name") == old:
                        names["org.opencontainers.image.ref.name"] = new
                data = json.dumps(index).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


@pytest.mark.bad_input
@pytest.mark.parametrize("bad", ["evil?x=1", "v2#frag"])
def test_import_of_an_archive_with_a_bad_tag_tags_nothing(registry, registry_b, seeded, content, tmp_path, capsys,
                                                         unique_repo, bad):
    archive, edited = tmp_path / "export.tar", tmp_path / "edited.tar"
    refs = [f"{registry.host}/{seeded[kind]}:v1" for kind in ("multiarch", "helm")]
    assert run_ferry(capsys, "export", *refs, "--to", str(archive)).code == 0
    _rename_in_index(archive, edited, f"{seeded['helm']}:v1", f"{seeded['helm']}:{bad}")
    result = run_ferry(capsys, "import", str(edited), "--to", f"{registry_b.host}/{unique_repo}", "--json")
    assert all_tags(registry_b.url, [f"{unique_repo}/{seeded[k]}" for k in ("multiarch", "helm")]) == {}
    assert result.code != 0
    artifacts = {a["source"]: a for a in result.json()["artifacts"]}
    assert "is not a valid tag" in artifacts[f"{seeded['helm']}:{bad}"]["error"]
    assert all(a["status"] == "failed" and a["tagged"] == [] for a in artifacts.values())
