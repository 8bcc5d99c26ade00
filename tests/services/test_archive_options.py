"""Export and import options on archive files: artifact forms, globs and limits, baseline deltas,
ContinueOnErrors and OverwriteTags both ways, remapping."""

from __future__ import annotations

import pytest

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


@pytest.fixture
def tagged(registry, content, unique_repo):
    """One repository with tags 1.0, 1.1 and 2.0 of the Docker image, plus the Helm chart at chart."""
    for tag in ("1.0", "1.1", "2.0"):
        c.push(registry.url, unique_repo, content["docker"], tag=tag)
    c.push(registry.url, unique_repo, content["helm"], tag="chart")
    return unique_repo


def _names(capsys, archive) -> list[str]:
    result = run_ferry(capsys, "inspect", str(archive), "--json")
    assert result.code == 0, result.err
    return sorted(a["name"] for a in result.json()["artifacts"])


def test_bare_repo_means_latest_and_globs_expand(registry, tagged, content, tmp_path, capsys):
    c.push(registry.url, tagged, content["artifact"], tag="latest")
    archive = tmp_path / "a.tar"
    result = run_ferry(capsys, "export", f"{registry.host}/{tagged}", f"{registry.host}/{tagged}:1.*",
                       "--to", str(archive))
    assert result.code == 0, result.err + result.out
    assert _names(capsys, archive) == [f"{tagged}:1.0", f"{tagged}:1.1", f"{tagged}:latest"]
    star = tmp_path / "star.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{tagged}:*", "--to", str(star)).code == 0
    assert _names(capsys, star) == sorted(f"{tagged}:{t}" for t in ("1.0", "1.1", "2.0", "chart", "latest"))


def test_glob_without_match_and_artifact_limit(registry, tagged, tmp_path, capsys):
    result = run_ferry(capsys, "export", f"{registry.host}/{tagged}:9.*", "--to", str(tmp_path / "x.tar"))
    assert result.code == 2 and "9.*" in result.err
    result = run_ferry(capsys, "export", f"{registry.host}/{tagged}:*", "--to", str(tmp_path / "y.tar"),
                       "--max-artifacts", "2")
    assert result.code == 2 and "--max-artifacts 2" in result.err
    assert not (tmp_path / "y.tar").exists()


def test_digest_artifact_is_imported_untagged(registry, registry_b, tagged, content, tmp_path, capsys):
    archive = tmp_path / "digest.tar"
    digest = content["helm"].digest
    assert run_ferry(capsys, "export", f"{registry.host}/{tagged}@{digest}", "--to", str(archive)).code == 0
    assert _names(capsys, archive) == [f"{tagged}@{digest}"]
    result = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/untagged")
    assert result.code == 0, result.err + result.out
    assert c.get_manifest(registry_b.url, f"untagged/{tagged}", digest)[1] == content["helm"].raw
    assert c.list_tags(registry_b.url, f"untagged/{tagged}") == []


def test_baseline_leaves_out_blobs_and_delta_imports_on_top(registry, registry_b, content, unique_repo,
                                                            tmp_path, capsys):
    base = c.random_layer(200_000, 5151)
    v1 = c.oci_image([base, c.random_layer(10_000, 5152)], seed=51)
    v2 = c.oci_image([base, c.random_layer(10_000, 5153)], seed=52)
    c.push(registry.url, unique_repo, v1, tag="v1")
    c.push(registry.url, unique_repo, v2, tag="v2")
    full, delta = tmp_path / "full.tar", tmp_path / "delta.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{unique_repo}:v1", "--to", str(full)).code == 0
    assert run_ferry(capsys, "export", f"{registry.host}/{unique_repo}:v2", "--to", str(delta),
                     "--baseline", str(full)).code == 0
    assert delta.stat().st_size < 60_000 < full.stat().st_size  # the 200 kB base layer stayed out
    # A catalog from inspect --json works as a baseline too.
    catalog = tmp_path / "catalog.json"
    catalog.write_text(run_ferry(capsys, "inspect", str(full), "--json").out)
    delta2 = tmp_path / "delta2.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{unique_repo}:v2", "--to", str(delta2),
                     "--baseline", str(catalog)).code == 0
    assert delta2.stat().st_size == delta.stat().st_size
    # Importing the delta into an empty registry names the missing blob and writes no tag.
    empty = run_ferry(capsys, "import", str(delta), "--to", f"{registry_b.host}/nobase")
    assert empty.code == 1 and base.digest in empty.out and "baseline" in empty.out
    assert c.list_tags(registry_b.url, f"nobase/{unique_repo}") == []
    # On top of the baseline it completes.
    assert run_ferry(capsys, "import", str(full), "--to", f"{registry_b.host}/withbase").code == 0
    result = run_ferry(capsys, "import", str(delta), "--to", f"{registry_b.host}/withbase")
    assert result.code == 0, result.out
    assert skopeo_raw(registry_b.host, f"withbase/{unique_repo}", "v2") == v2.raw


def test_import_continue_on_errors_and_overwrite_tags(registry, registry_b, tagged, content, tmp_path, capsys):
    archive = tmp_path / "two.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{tagged}:1.0", f"{registry.host}/{tagged}:chart",
                     "--to", str(archive)).code == 0
    # The target's 1.0 already points elsewhere.
    c.push(registry_b.url, f"coe/{tagged}", content["artifact"], tag="1.0")
    without = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/coe", "--json")
    assert without.code == 7  # the one reason: a conflicting tag
    assert c.list_tags(registry_b.url, f"coe/{tagged}") == ["1.0"]  # nothing tagged without ContinueOnErrors
    assert skopeo_raw(registry_b.host, f"coe/{tagged}", "1.0") == content["artifact"].raw
    with_coe = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/coe", "--continue-on-errors",
                         "--json")
    assert with_coe.code == 7
    status = {a["source"]: a["status"] for a in with_coe.json()["artifacts"]}
    assert status == {f"{tagged}:1.0": "failed", f"{tagged}:chart": "copied"}
    assert skopeo_raw(registry_b.host, f"coe/{tagged}", "chart") == content["helm"].raw
    assert skopeo_raw(registry_b.host, f"coe/{tagged}", "1.0") == content["artifact"].raw
    forced = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/coe", "--overwrite-tags")
    assert forced.code == 0
    assert skopeo_raw(registry_b.host, f"coe/{tagged}", "1.0") == content["docker"].raw


def test_export_continue_on_errors(registry, tagged, content, tmp_path, capsys):
    archive = tmp_path / "coe.tar"
    missing = f"{registry.host}/{tagged}:nope"
    without = run_ferry(capsys, "export", f"{registry.host}/{tagged}:1.0", missing, "--to", str(archive))
    assert without.code == 5 and f"{tagged}:nope" in without.out
    assert not archive.exists()
    with_coe = run_ferry(capsys, "export", f"{registry.host}/{tagged}:1.0", missing, "--to", str(archive),
                         "--continue-on-errors")
    assert with_coe.code == 5 and archive.exists()
    assert _names(capsys, archive) == [f"{tagged}:1.0"]


def test_remap_and_prefix(registry, registry_b, tagged, content, tmp_path, capsys):
    archive = tmp_path / "remap.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{tagged}:2.0", "--to", str(archive)).code == 0
    result = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/pre",
                       "--remap", f"{tagged}=renamed/app")
    assert result.code == 0, result.err + result.out
    assert skopeo_raw(registry_b.host, "pre/renamed/app", "2.0") == content["docker"].raw
    bad = run_ferry(capsys, "import", str(archive), "--to", registry_b.host, "--remap", "NoEquals")
    assert bad.code == 2 and "NoEquals" in bad.err
