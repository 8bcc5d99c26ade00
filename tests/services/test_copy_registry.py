"""ferry copy between real distribution registries: every content kind, byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ferry.copy import copy_artifacts
from ferry.plan import CopyRequest
from ferry.registry.client import RegistryClient
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw

KINDS = ["multiarch", "docker", "docker_list", "artifact", "helm"]


@pytest.fixture(scope="module")
def seeded(registry, content):
    """The sample set pushed to the session registry under seeded/<kind>:v1 (referrers included)."""
    return c.push_samples(registry.url, content, prefix="seeded")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_copies_byte_identical(kind, registry, registry_b, content, seeded, capsys):
    manifest = content[kind]
    repo = seeded[kind]
    result = run_ferry(capsys, "copy", f"{registry.host}/{repo}:v1", f"{registry_b.host}/copied/{kind}:v1", "--json")
    assert result.code == 0, result.err + result.out
    report = result.json()
    assert report["artifacts"][0]["digest"] == manifest.digest
    # An outside client reads exactly the bytes we pushed, under the tag, and every child too.
    assert skopeo_raw(registry_b.host, f"copied/{kind}", "v1") == manifest.raw
    for child in manifest.all_manifests():
        assert c.get_manifest(registry_b.url, f"copied/{kind}", child.digest)[1] == child.raw
    for blob in manifest.all_blobs():
        assert c.get_blob(registry_b.url, f"copied/{kind}", blob.digest) == blob.data


def test_multiarch_copies_every_platform_and_referrers(registry, registry_b, content, seeded, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['multiarch']}:v1",
                       f"{registry_b.host}/withrefs/multiarch:v2", "--json")
    assert result.code == 0, result.err
    artifact = result.json()["artifacts"][0]
    assert sorted(artifact["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    assert artifact["referrers"] == 2
    # The target holds the referrers fallback index listing both referrers with their artifactType.
    _, raw = c.get_manifest(registry_b.url, "withrefs/multiarch", c.referrers_tag(content["multiarch"].digest))
    listed = {d["digest"]: d for d in json.loads(raw)["manifests"]}
    assert set(listed) == {content["signature"].digest, content["sbom"].digest}
    assert listed[content["signature"].digest]["artifactType"] == c.ARTIFACT_TYPE_SIGNATURE
    for name in ("signature", "sbom"):
        assert c.get_manifest(registry_b.url, "withrefs/multiarch", content[name].digest)[1] == content[name].raw


def test_no_referrers_flag_leaves_them(registry, registry_b, content, seeded, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['multiarch']}:v1",
                       f"{registry_b.host}/norefs/multiarch:v1", "--no-referrers", "--json")
    assert result.code == 0, result.err
    assert result.json()["artifacts"][0]["referrers"] == 0
    response = httpx.get(f"{registry_b.url}/v2/norefs/multiarch/manifests/{content['signature'].digest}",
                         headers={"Accept": c.OCI_MANIFEST})
    assert response.status_code == 404


def test_platform_filter_selects_one_manifest(registry, registry_b, content, seeded, capsys):
    amd64 = content["multiarch"].children[0]
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['multiarch']}:v1",
                       f"{registry_b.host}/onearch/multiarch:v1", "--platform", "linux/amd64", "--json")
    assert result.code == 0, result.err
    assert result.json()["artifacts"][0]["digest"] == amd64.digest
    assert skopeo_raw(registry_b.host, "onearch/multiarch", "v1") == amd64.raw


def test_platform_filter_with_no_match_names_platforms(registry, registry_b, seeded, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['multiarch']}:v1",
                       f"{registry_b.host}/noarch/multiarch:v1", "--platform", "windows/amd64")
    assert result.code == 1
    assert "linux/amd64" in result.out and "windows/amd64" in result.out
    assert c.list_tags(registry_b.url, "noarch/multiarch") == []


def test_copy_again_uploads_nothing(registry, registry_b, content, seeded, capsys):
    args = ["copy", f"{registry.host}/{seeded['docker_list']}:v1", f"{registry_b.host}/again/list:v1", "--json"]
    first = run_ferry(capsys, *args).json()
    assert first["bytes_uploaded"] == sum(b.size for b in content["docker_list"].all_blobs())
    second = run_ferry(capsys, *args).json()
    assert second["ok"] and second["bytes_uploaded"] == 0 and second["blobs_uploaded"] == 0
    assert second["blobs_skipped"] == second["blobs_total"] > 0


def test_shared_layers_move_once_and_are_mounted(registry, registry_b, content):
    base = c.random_layer(40_000, 777)
    one = c.oci_image([base, c.random_layer(5_000, 778)], seed=7)
    two = c.oci_image([base, c.random_layer(5_000, 779)], seed=8)
    c.push(registry.url, "shared/one", one, tag="v1")
    c.push(registry.url, "shared/two", two, tag="v1")
    requests = [CopyRequest("shared/one", "v1", "sharedcopy/one", ("v1",)),
                CopyRequest("shared/two", "v1", "sharedcopy/two", ("v1",))]
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests)
    assert report.ok, report.failed
    unique = {b.digest: b.size for b in one.all_blobs() + two.all_blobs()}
    # Each unique blob's bytes travel once; the shared base is mounted into the second repository.
    assert report.bytes_uploaded == sum(unique.values())
    shared = {b.digest for b in one.all_blobs()} & {b.digest for b in two.all_blobs()}
    assert shared == {base.digest}
    assert report.blobs_mounted == len(shared)
    for repo in ("sharedcopy/one", "sharedcopy/two"):
        assert c.get_blob(registry_b.url, repo, base.digest) == base.data


def test_later_runs_mount_layers_remembered_from_earlier_runs(registry, registry_b, capsys):
    base = c.random_layer(60_000, 881)
    one = c.oci_image([base, c.random_layer(4_000, 882)], seed=11)
    two = c.oci_image([base, c.random_layer(4_000, 883)], seed=12)
    c.push(registry.url, "remember/one", one, tag="v1")
    c.push(registry.url, "remember/two", two, tag="v1")
    first = run_ferry(capsys, "copy", f"{registry.host}/remember/one:v1", f"{registry_b.host}/remembered/one:v1",
                      "--json").json()
    assert first["ok"] and first["blobs_mounted"] == 0
    # A separate invocation: the base layer is mounted from remembered/one instead of re-sent.
    second = run_ferry(capsys, "copy", f"{registry.host}/remember/two:v1", f"{registry_b.host}/remembered/two:v1",
                       "--json").json()
    assert second["ok"] and second["blobs_mounted"] == 1
    assert second["bytes_uploaded"] == sum(b.size for b in two.all_blobs() if b.digest != base.digest)
    assert c.get_blob(registry_b.url, "remembered/two", base.digest) == base.data


def test_stale_cache_entry_falls_back_to_upload(registry, registry_b, isolated_blob_cache):
    from ferry.blobcache import BlobLocationCache, default_cache_path

    image = c.oci_image([c.random_layer(30_000, 991)], seed=13)
    c.push(registry.url, "stale/src", image, tag="v1")
    cache = BlobLocationCache(default_cache_path())
    for blob in image.all_blobs():  # claims the blobs are in a repository that does not exist
        cache.record(registry_b.host, "nowhere/at-all", blob.digest)
    with RegistryClient(registry.host) as src, RegistryClient(registry_b.host) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst, cache),
                                [CopyRequest("stale/src", "v1", "stale/dst", ("v1",))])
    assert report.ok and report.blobs_mounted == 0
    assert report.bytes_uploaded == sum(b.size for b in image.all_blobs())
    assert cache.repositories(registry_b.host, image.blobs[-1].digest) == ["stale/dst"]


def test_digest_source_untagged(registry, registry_b, content, seeded, capsys):
    digest = content["helm"].digest
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['helm']}@{digest}",
                       f"{registry_b.host}/untagged/helm", "--untagged", "--json")
    assert result.code == 0, result.err
    assert c.get_manifest(registry_b.url, "untagged/helm", digest)[1] == content["helm"].raw
    assert c.list_tags(registry_b.url, "untagged/helm") == []


def test_bare_host_destination_keeps_repository_and_tag(registry, registry_b, content, seeded, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['artifact']}:v1", registry_b.host)
    assert result.code == 0, result.err
    assert "copied" in result.out
    assert skopeo_raw(registry_b.host, seeded["artifact"], "v1") == content["artifact"].raw


def test_existing_different_tag_needs_force(registry, registry_b, content, seeded, capsys):
    target = f"{registry_b.host}/conflict/img:v1"
    assert run_ferry(capsys, "copy", f"{registry.host}/{seeded['docker']}:v1", target).code == 0
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded['helm']}:v1", target)
    assert result.code == 7  # conflict
    assert "conflict/img:v1" in result.out and "--force" in result.out
    assert skopeo_raw(registry_b.host, "conflict/img", "v1") == content["docker"].raw
    forced = run_ferry(capsys, "copy", f"{registry.host}/{seeded['helm']}:v1", target, "--force")
    assert forced.code == 0
    assert skopeo_raw(registry_b.host, "conflict/img", "v1") == content["helm"].raw


def test_all_tags_and_tag_regex(registry, registry_b, content, capsys):
    image = content["docker"]
    for tag in ("1.0", "1.1", "2.0"):
        c.push(registry.url, "many/tags", image, tag=tag)
    result = run_ferry(capsys, "copy", f"{registry.host}/many/tags", f"{registry_b.host}/many/regex",
                       "--tags", r"1\..*", "--json")
    assert result.code == 0, result.err
    assert c.list_tags(registry_b.url, "many/regex") == ["1.0", "1.1"]
    result = run_ferry(capsys, "copy", f"{registry.host}/many/tags", f"{registry_b.host}/many/all", "--all-tags")
    assert result.code == 0
    assert c.list_tags(registry_b.url, "many/all") == ["1.0", "1.1", "2.0"]


def test_oras_sdk_artifact_round_trips(registry, registry_b, tmp_path, capsys):
    import oras.client

    payload = tmp_path / "notes.txt"
    payload.write_bytes(b"pushed with the oras python sdk\n")
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.push(target=f"{registry.host}/orasrepo/notes:v1", files=[str(payload)],
                disable_path_validation=True)
    source_raw = c.get_manifest(registry.url, "orasrepo/notes", "v1")[1]
    result = run_ferry(capsys, "copy", f"{registry.host}/orasrepo/notes:v1", f"{registry_b.host}/orascopy/notes:v1")
    assert result.code == 0, result.err
    assert c.get_manifest(registry_b.url, "orascopy/notes", "v1")[1] == source_raw
    out_dir = tmp_path / "pulled"
    target_client = oras.client.OrasClient(hostname=registry_b.host, insecure=True)
    files = target_client.pull(target=f"{registry_b.host}/orascopy/notes:v1", outdir=str(out_dir))
    assert [Path(f).read_bytes() for f in files] == [payload.read_bytes()]


def test_several_sources_in_one_run_under_a_prefix(registry, registry_b, content, capsys):
    c.push(registry.url, "multi/one", content["docker"], tag="v1")
    c.push(registry.url, "multi/two", content["helm"], tag="v1")
    c.push(registry.url, "multi/two", content["helm"], tag="v2")
    result = run_ferry(capsys, "copy", f"{registry.host}/multi/one:v1", f"{registry.host}/multi/two",
                       f"{registry_b.host}/mirror", "--all-tags", "--json")
    # --all-tags needs SRCs without tags, so the tagged first source is refused by name
    assert result.code == 2 and "multi/one:v1" in result.err
    result = run_ferry(capsys, "copy", f"{registry.host}/multi/one:v1", f"{registry.host}/multi/two:v2",
                       f"{registry_b.host}/mirror", "--json")
    assert result.code == 0, result.err
    assert [a["target"] for a in result.json()["artifacts"]] == ["mirror/multi/one:v1", "mirror/multi/two:v2"]
    assert skopeo_raw(registry_b.host, "mirror/multi/one", "v1") == content["docker"].raw
    assert skopeo_raw(registry_b.host, "mirror/multi/two", "v2") == content["helm"].raw


def test_several_sources_need_one_registry_and_an_untagged_destination(registry, registry_b, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/a/b:v1", f"{registry_b.host}/c/d:v1", f"{registry_b.host}")
    assert result.code == 2 and "one registry" in result.err
    result = run_ferry(capsys, "copy", f"{registry.host}/a/b:v1", f"{registry.host}/c/d:v1",
                       f"{registry_b.host}/x:v1")
    assert result.code == 2 and "without a tag" in result.err
