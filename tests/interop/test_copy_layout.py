"""The OCI layout transport: ferry writes layouts skopeo reads, and reads layouts skopeo writes."""

from __future__ import annotations

import json
import subprocess

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


def _skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120)


def test_registry_to_layout_is_readable_by_skopeo(registry, registry_b, content, tmp_path, capsys):
    c.push(registry.url, "layout/multi", content["multiarch"], tag="v1")
    c.push_referrer(registry.url, "layout/multi", content["signature"])
    layout = tmp_path / "layout"
    result = run_ferry(capsys, "copy", f"{registry.host}/layout/multi:v1", f"oci:{layout}")
    assert result.code == 0, result.err + result.out
    index = json.loads((layout / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert names["layout/multi:v1"] == content["multiarch"].digest
    assert f"layout/multi:{c.referrers_tag(content['multiarch'].digest)}" in names
    # No partial files are left behind.
    assert not list(layout.rglob("*.partial"))
    # skopeo reads the layout by repo:tag and pushes it byte-identical into another registry.
    _skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:layout/multi:v1",
            f"docker://{registry_b.host}/fromlayout/multi:v1")
    assert skopeo_raw(registry_b.host, "fromlayout/multi", "v1") == content["multiarch"].raw


def test_layout_written_by_skopeo_copies_into_registry(registry, registry_b, content, tmp_path, capsys):
    c.push(registry.url, "layout/docker", content["docker_list"], tag="v1")
    layout = tmp_path / "skopeo-layout"
    _skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{registry.host}/layout/docker:v1",
            f"oci:{layout}:v1")
    # skopeo names the entry with a bare tag; ferry finds it under any repository name.
    result = run_ferry(capsys, "copy", f"oci:{layout}:any/name:v1", f"{registry_b.host}/fromskopeo/docker:v1")
    assert result.code == 0, result.err + result.out
    # skopeo converted the Docker list to OCI as it wrote the layout; ferry keeps those bytes exactly.
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    written = (layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes()
    assert skopeo_raw(registry_b.host, "fromskopeo/docker", "v1") == written


def test_layout_round_trip_keeps_referrers(registry, registry_b, content, tmp_path, capsys):
    c.push(registry.url, "layout/refs", content["multiarch"], tag="v1")
    c.push_referrer(registry.url, "layout/refs", content["sbom"])
    layout = tmp_path / "rt"
    assert run_ferry(capsys, "copy", f"{registry.host}/layout/refs:v1", f"oci:{layout}").code == 0
    result = run_ferry(capsys, "copy", f"oci:{layout}:layout/refs:v1", f"{registry_b.host}/rt/refs:v1", "--json")
    assert result.code == 0, result.err
    assert result.json()["artifacts"][0]["referrers"] == 1
    _, raw = c.get_manifest(registry_b.url, "rt/refs", c.referrers_tag(content["multiarch"].digest))
    assert [d["digest"] for d in json.loads(raw)["manifests"]] == [content["sbom"].digest]


def test_missing_layout_and_missing_ref_are_clear(tmp_path, registry_b, capsys):
    result = run_ferry(capsys, "copy", f"oci:{tmp_path}/nope:a/b:v1", f"{registry_b.host}/x/y:v1")
    assert result.code == 2
    assert "index.json" in result.err and "nope" in result.err
    layout = tmp_path / "empty"
    layout.mkdir()
    (layout / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    result = run_ferry(capsys, "copy", f"oci:{layout}:a/b:v1", f"{registry_b.host}/x/y:v1")
    assert result.code == 5
    assert "a/b:v1" in result.out
