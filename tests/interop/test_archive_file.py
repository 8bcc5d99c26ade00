"""The transfer archive on a local file: ferry export/import/inspect, skopeo interop, bad archives."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from ferry.archive import format as fmt
from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw

KINDS = ["multiarch", "docker", "docker_list", "artifact", "helm"]


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["skopeo", *args], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done


def _export(capsys, registry, archive: Path, *refs: str, extra: tuple[str, ...] = ()):
    return run_ferry(capsys, "export", *(f"{registry.host}/{r}" for r in refs), "--to", str(archive), *extra)


def _members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:") as tar:
        return tar.getmembers()


# -- pure layout --------------------------------------------------------------------------------
def test_plan_offsets_are_block_aligned_and_contiguous():
    plan = fmt.plan_archive(30, fmt.reserved_index_size(700), [("blobs/sha256/" + "a" * 64, 513),
                                                               ("blobs/sha256/" + "b" * 64, 0)])
    names = [e.name for e in plan.entries]
    assert names[:2] == ["oci-layout", "index.json"]
    assert plan.entries[0].header_offset == 0 and plan.entries[0].data_offset == 512
    assert plan.entries[1].size == 2048  # 700 + 1024 slack, rounded to blocks
    for before, after in zip(plan.entries, plan.entries[1:], strict=False):
        assert after.header_offset == before.end and after.header_offset % 512 == 0
    assert plan.entries[2].end - plan.entries[2].data_offset == 1024  # 513 bytes padded to two blocks
    assert plan.total_size == plan.entries[-1].end + 1024
    header = fmt.tar_header("blobs/sha256/" + "a" * 64, 513)
    assert len(header) == 512
    info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
    assert (info.name, info.size, info.mode, info.mtime) == ("blobs/sha256/" + "a" * 64, 513, 0o644, 0)
    assert fmt.fit_index(b"{}", 5) == b"{}   " and json.loads(fmt.fit_index(b"{}", 5)) == {}
    with pytest.raises(Exception, match="reserved"):
        fmt.fit_index(b"{}", 1)


# -- round trip ---------------------------------------------------------------------------------
def test_round_trip_every_kind_with_referrers(registry, registry_b, content, tmp_path, capsys):
    for kind in KINDS:
        c.push(registry.url, f"arc/{kind}", content[kind], tag="v1")
    c.push_referrer(registry.url, "arc/multiarch", content["signature"])
    c.push_referrer(registry.url, "arc/multiarch", content["sbom"])
    archive = tmp_path / "out.tar"
    result = _export(capsys, registry, archive, *(f"arc/{k}:v1" for k in KINDS), extra=("--json",))
    assert result.code == 0, result.err + result.out
    assert result.json()["archive"] == str(archive)
    assert not list(tmp_path.glob("*.partial-*"))
    # Metadata first.
    members = _members(archive)
    assert [m.name for m in members[:2]] == ["oci-layout", "index.json"]
    assert all(m.name.startswith("blobs/sha256/") for m in members[2:])

    result = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/mirror", "--json")
    assert result.code == 0, result.err + result.out
    assert len(result.json()["artifacts"]) == len(KINDS)
    for kind in KINDS:
        _, raw = c.get_manifest(registry_b.url, f"mirror/arc/{kind}", "v1")
        assert raw == content[kind].raw, kind
    _, raw = c.get_manifest(registry_b.url, "mirror/arc/multiarch", c.referrers_tag(content["multiarch"].digest))
    assert {d["digest"] for d in json.loads(raw)["manifests"]} == {content["signature"].digest,
                                                                  content["sbom"].digest}
    for ref in ("signature", "sbom"):
        _, raw = c.get_manifest(registry_b.url, "mirror/arc/multiarch", content[ref].digest)
        assert raw == content[ref].raw

    result = run_ferry(capsys, "inspect", str(archive), "--json")
    assert result.code == 0, result.err
    data = result.json()
    names = {a["name"]: a for a in data["artifacts"]}
    assert set(names) == {f"arc/{k}:v1" for k in KINDS}
    assert names["arc/multiarch:v1"]["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert data["blobs"] == len(members) - 2


# -- skopeo interop -----------------------------------------------------------------------------
def test_skopeo_reads_ferry_archive(registry, registry_b, content, tmp_path, capsys):
    """skopeo's oci transport (1.9) only resolves index.json entries of OCI media types, so the
    skopeo side reads the OCI kinds; Docker kinds round-trip through Ferry above."""
    c.push(registry.url, "arcsk/multi", content["multiarch"], tag="v1")
    c.push(registry.url, "arcsk/helm", content["helm"], tag="v2")
    archive = tmp_path / "sk.tar"
    assert _export(capsys, registry, archive, "arcsk/multi:v1", "arcsk/helm:v2").code == 0
    raw = _skopeo("inspect", "--raw", f"oci-archive:{archive}:arcsk/multi:v1").stdout
    assert raw == content["multiarch"].raw
    _skopeo("copy", "--all", "--dest-tls-verify=false", f"oci-archive:{archive}:arcsk/helm:v2",
            f"docker://{registry_b.host}/fromarchive/helm:v2")
    assert skopeo_raw(registry_b.host, "fromarchive/helm", "v2") == content["helm"].raw
    _skopeo("copy", "--all", "--dest-tls-verify=false", f"oci-archive:{archive}:arcsk/multi:v1",
            f"docker://{registry_b.host}/fromarchive/multi:v1")
    assert skopeo_raw(registry_b.host, "fromarchive/multi", "v1") == content["multiarch"].raw


def test_ferry_imports_skopeo_archive(registry, registry_b, content, tmp_path, capsys):
    c.push(registry.url, "arcsk/dlist", content["docker_list"], tag="v1")
    archive = tmp_path / "skopeo.tar"
    _skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{registry.host}/arcsk/dlist:v1",
            f"oci-archive:{archive}:arcsk/dlist:v1")
    names = [m.name.removeprefix("./") for m in _members(archive)]
    assert names.index("index.json") > names.index(next(n for n in names if n.startswith("blobs/sha256/")))
    result = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/fromsk")
    assert result.code == 0, result.err + result.out
    with tarfile.open(archive, "r:") as tar:
        index = json.load(tar.extractfile("index.json"))
        entry = index["manifests"][0]
        written = tar.extractfile(f"blobs/sha256/{entry['digest'].split(':')[1]}").read()
    assert skopeo_raw(registry_b.host, "fromsk/arcsk/dlist", "v1") == written


# -- dedup --------------------------------------------------------------------------------------
def test_shared_layers_are_stored_once(registry, content, tmp_path, capsys):
    big = c.random_layer(600_000, 4242)
    one = c.oci_image([big, c.random_layer(1000, 1)], platform=("linux", "amd64"), seed=1)
    two = c.oci_image([big, c.random_layer(1000, 2)], platform=("linux", "amd64"), seed=2)
    c.push(registry.url, "dedup/one", one, tag="v1")
    c.push(registry.url, "dedup/two", two, tag="v1")
    archive = tmp_path / "dedup.tar"
    assert _export(capsys, registry, archive, "dedup/one:v1", "dedup/two:v1").code == 0
    names = [m.name for m in _members(archive)]
    assert names.count(f"blobs/sha256/{big.digest.split(':')[1]}") == 1
    assert len(names) == len(set(names))
    unique = {b.digest: b.size for m in (one, two) for b in m.all_blobs()}
    unique.update({m.digest: m.size for m in (one, two)})
    unique_bytes = sum(unique.values())
    # Headers and block padding for 7 entries, plus oci-layout and a reserved index, stay small.
    assert archive.stat().st_size <= 1.01 * unique_bytes + 16 * 1024
    result = run_ferry(capsys, "inspect", str(archive), "--json")
    assert result.json()["shared_bytes"] == big.size


# -- export options -----------------------------------------------------------------------------
def test_export_refuses_existing_file_unless_overwrite(registry, content, tmp_path, capsys):
    c.push(registry.url, "arcopt/helm", content["helm"], tag="v1")
    archive = tmp_path / "exists.tar"
    archive.write_bytes(b"precious")
    result = _export(capsys, registry, archive, "arcopt/helm:v1")
    assert result.code == 2
    assert str(archive) in result.err and "--overwrite" in result.err
    assert archive.read_bytes() == b"precious"
    assert _export(capsys, registry, archive, "arcopt/helm:v1", extra=("--overwrite",)).code == 0
    assert [m.name for m in _members(archive)][:2] == ["oci-layout", "index.json"]


def test_failed_export_leaves_no_file_and_continue_on_errors_keeps_the_rest(registry, content, tmp_path, capsys):
    c.push(registry.url, "arcopt/artifact", content["artifact"], tag="v1")
    archive = tmp_path / "failed.tar"
    result = _export(capsys, registry, archive, "arcopt/artifact:v1", "arcopt/artifact:missing")
    assert result.code == 5  # not found, the one reason (the other was held back)
    assert "arcopt/artifact:missing" in result.out
    assert not archive.exists()
    assert list(tmp_path.iterdir()) == []

    result = _export(capsys, registry, archive, "arcopt/artifact:v1", "arcopt/artifact:missing",
                     extra=("--continue-on-errors", "--json"))
    assert result.code == 5
    statuses = {a["source"]: a["status"] for a in result.json()["artifacts"]}
    assert statuses == {"arcopt/artifact:v1": "copied", "arcopt/artifact:missing": "failed"}
    with tarfile.open(archive, "r:") as tar:
        index = json.load(tar.extractfile("index.json"))
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == \
        ["arcopt/artifact:v1"]


def test_failed_blob_leaves_no_file(registry, content, tmp_path, capsys, monkeypatch):
    c.push(registry.url, "arcopt/docker", content["docker"], tag="v1")
    from ferry.transports import registry as registry_transport

    original = registry_transport.RegistrySource.open_blob

    def broken(self, repository, descriptor):
        if descriptor.size == content["docker"].all_blobs()[-1].size:
            raise registry_transport.NotFoundError(f"blob {descriptor.digest} vanished")
        return original(self, repository, descriptor)

    monkeypatch.setattr(registry_transport.RegistrySource, "open_blob", broken)
    archive = tmp_path / "broken.tar"
    result = _export(capsys, registry, archive, "arcopt/docker:v1")
    assert result.code == 1 and "vanished" in result.out
    assert list(tmp_path.iterdir()) == []


# -- bad archives -------------------------------------------------------------------------------
@pytest.fixture
def good_archive(registry, content, tmp_path, capsys) -> Path:
    c.push(registry.url, "arcbad/artifact", content["artifact"], tag="v1")
    archive = tmp_path / "good.tar"
    assert _export(capsys, registry, archive, "arcbad/artifact:v1").code == 0
    return archive


def _rewrite(source: Path, target: Path, edit) -> None:
    """Copy the tar ``source`` to ``target`` member by member through ``edit(info, data)``."""
    with tarfile.open(source, "r:") as src, tarfile.open(target, "w:", format=tarfile.USTAR_FORMAT) as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isreg() else b""
            for new_info, new_data in edit(info, data):
                dst.addfile(new_info, io.BytesIO(new_data) if new_info.isreg() else None)


def _largest_blob(archive: Path) -> str:
    return max((m for m in _members(archive) if m.name.startswith("blobs/")), key=lambda m: m.size).name


def _assert_rejected(capsys, registry_b, archive: Path, repo: str, *words: str) -> None:
    result = run_ferry(capsys, "import", str(archive), "--to", f"{registry_b.host}/{repo}")
    assert result.code != 0
    text = (result.err + result.out).lower()
    for word in words:
        assert word.lower() in text, text
    assert c.list_tags(registry_b.url, f"{repo}/arcbad/artifact") == []


def test_rejects_path_traversal(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "traversal.tar"

    def edit(info, data):
        yield info, data
        if info.name == "index.json":
            evil = tarfile.TarInfo("blobs/../../evil")
            evil.size = 4
            yield evil, b"evil"

    _rewrite(good_archive, bad, edit)
    _assert_rejected(capsys, registry_b, bad, "trav", "unsafe path", "evil")


def test_rejects_symlink(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "symlink.tar"

    def edit(info, data):
        yield info, data
        if info.name == "index.json":
            link = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            yield link, b""

    _rewrite(good_archive, bad, edit)
    _assert_rejected(capsys, registry_b, bad, "link", "link")


def test_rejects_digest_mismatch(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "flipped.tar"
    target = _largest_blob(good_archive)
    with tarfile.open(good_archive, "r:") as tar:
        offset = tar.getmember(target).offset_data
    data = bytearray(good_archive.read_bytes())
    data[offset + 100] ^= 0xFF
    bad.write_bytes(bytes(data))
    _assert_rejected(capsys, registry_b, bad, "flip", "digest mismatch")


def test_rejects_truncation(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "truncated.tar"
    with tarfile.open(good_archive, "r:") as tar:
        last = tar.getmembers()[-1]
    bad.write_bytes(good_archive.read_bytes()[: last.offset_data + last.size // 2])
    _assert_rejected(capsys, registry_b, bad, "trunc", "truncated")


def test_rejects_size_disagreeing_with_descriptor(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "size.tar"
    target = _largest_blob(good_archive)

    def edit(info, data):
        if info.name == target:
            info.size = len(data) - 1
            data = data[:-1]
        yield info, data

    _rewrite(good_archive, bad, edit)
    _assert_rejected(capsys, registry_b, bad, "size", target, "descriptor")


def test_rejects_missing_index(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "noindex.tar"

    def edit(info, data):
        if info.name != "index.json":
            yield info, data

    _rewrite(good_archive, bad, edit)
    result = run_ferry(capsys, "import", str(bad), "--to", f"{registry_b.host}/noidx")
    assert result.code == 6 and "missing index.json" in result.err


def test_rejects_gzip(good_archive, registry_b, tmp_path, capsys):
    bad = tmp_path / "archive.tar.gz"
    bad.write_bytes(gzip.compress(good_archive.read_bytes()))
    result = run_ferry(capsys, "import", str(bad), "--to", f"{registry_b.host}/gz")
    assert result.code != 0 and "gzip-compressed" in result.err
