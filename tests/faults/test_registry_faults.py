"""Faults: corrupt or truncated content, missing tags, bad references, retries, upload resume.

Corrupt and flaky sources are the harness's FakeRegistry; destinations are real distribution
registries, checked afterwards with the harness's own client: a failed copy leaves no tag and
no blob behind. Interrupted uploads go through `FaultProxy`, a TCP proxy in front of a real
registry that cuts a chosen PATCH after a chosen number of body bytes; the uploads record the
bytes they sent again in `figures`. Content that does not match its digest is an `attack`, a
reference to nothing or a malformed one `bad_input`, the rest a `fault`. (Tag pagination, which
is none of these, is in tests/services/test_registry_tags.py.)
"""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from ferry.copy import copy_artifacts
from ferry.errors import IntegrityError, NotFoundError, TransientRegistryError
from ferry.plan import CopyRequest
from ferry.registry.client import RegistryClient
from ferry.registry.retry import RetryPolicy
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.harness.fakeregistry import FakeRegistry
from tests.harness.faultproxy import FaultProxy
from tests.helpers import run_ferry

KiB = 1024


def image_with_layer(size: int = 20_000, seed: int = 1) -> tuple[c.Manifest, c.Blob]:
    layer = c.random_layer(size, seed)
    return c.oci_image([layer], seed=seed), layer


def corrupted(data: bytes) -> bytes:
    """Same length, different bytes (so the failure is a digest mismatch, not a size one)."""
    return bytes([data[0] ^ 0xFF]) + data[1:]


def serve(fake: FakeRegistry, repo: str, image: c.Manifest, *, skip: str | None = None) -> None:
    """Serve `image` and its blobs from `fake`, leaving out the blob `skip`."""
    for blob in image.all_blobs():
        if blob.digest != skip:
            fake.add_blob(blob.data)
    fake.add_manifest(repo, image.media_type, image.raw, tags=["v1"])


def blob_status(server_url: str, repo: str, digest: str) -> int:
    return httpx.head(f"{server_url}/v2/{repo}/blobs/{digest}").status_code


# --- integrity -------------------------------------------------------------------------------


@pytest.mark.attack
def test_layer_digest_mismatch_fails_and_writes_nothing(fake_registry, registry_b, unique_repo, capsys):
    image, layer = image_with_layer(seed=11)
    serve(fake_registry, "src/img", image, skip=layer.digest)
    fake_registry.add_blob(corrupted(layer.data), digest=layer.digest)
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/src/img:v1", f"{registry_b.host}/{unique_repo}:v1")
    output = result.out + result.err
    assert result.code == 1, output
    assert "digest mismatch" in output
    assert layer.digest in output
    assert c.list_tags(registry_b.url, unique_repo) == []
    assert blob_status(registry_b.url, unique_repo, layer.digest) == 404
    assert httpx.get(f"{registry_b.url}/v2/{unique_repo}/manifests/{image.digest}",
                     headers={"Accept": c.OCI_MANIFEST}).status_code == 404


@pytest.mark.attack
@pytest.mark.parametrize("kind", ["layout", "archive"])
def test_layer_digest_mismatch_into_a_layout_or_archive_file_writes_nothing(fake_registry, kind, tmp_path, capsys):
    """Those destinations no longer hash a blob again: the source's stream is the one check."""
    image, layer = image_with_layer(seed=12)
    serve(fake_registry, "src/img", image, skip=layer.digest)
    fake_registry.add_blob(corrupted(layer.data), digest=layer.digest)
    target = tmp_path / "out"
    command = (["copy", f"{fake_registry.host}/src/img:v1", f"oci:{target}"] if kind == "layout"
               else ["export", f"{fake_registry.host}/src/img:v1", "--to", str(target)])
    result = run_ferry(capsys, *command)
    assert result.code != 0 and "digest mismatch" in result.out + result.err, result.out + result.err
    assert layer.digest in result.out + result.err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(p.name == layer.digest.split(":")[1] for p in written), written
    assert kind == "layout" or written == []  # an archive is published whole or not at all


@pytest.mark.attack
def test_manifest_digest_mismatch_by_digest(fake_registry, registry_b, unique_repo, capsys):
    image, _ = image_with_layer(seed=12)
    for blob in image.all_blobs():
        fake_registry.add_blob(blob.data)
    claimed = "sha256:" + hashlib.sha256(b"not these bytes").hexdigest()
    fake_registry.add_manifest("src/img", image.media_type, image.raw, digest=claimed)

    with RegistryClient(fake_registry.host) as client, pytest.raises(IntegrityError) as info:
        client.get_manifest("src/img", claimed)
    assert "digest mismatch" in str(info.value) and claimed in str(info.value) and image.digest in str(info.value)

    result = run_ferry(capsys, "copy", f"{fake_registry.host}/src/img@{claimed}", f"{registry_b.host}/{unique_repo}:v1")
    assert result.code == 6  # integrity
    assert "digest mismatch" in result.out + result.err and claimed in result.out + result.err
    assert c.list_tags(registry_b.url, unique_repo) == []


@pytest.mark.attack
def test_manifest_by_tag_with_lying_digest_header(fake_registry, registry_b, unique_repo, capsys):
    image, _ = image_with_layer(seed=13)
    for blob in image.all_blobs():
        fake_registry.add_blob(blob.data)
    claimed = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    fake_registry.add_manifest("src/img", image.media_type, image.raw, tags=["v1"], digest=claimed)
    with RegistryClient(fake_registry.host) as client, pytest.raises(IntegrityError, match=claimed):
        client.get_manifest("src/img", "v1")
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/src/img:v1", f"{registry_b.host}/{unique_repo}:v1")
    assert result.code == 6
    assert "digest mismatch" in result.out
    assert c.list_tags(registry_b.url, unique_repo) == []


@pytest.mark.fault
def test_truncated_blob_fails_and_writes_nothing(fake_registry, registry_b, unique_repo, capsys):
    image, layer = image_with_layer(size=50_000, seed=14)
    serve(fake_registry, "src/img", image)
    fake_registry.truncate_blob(layer.digest, 1_000)
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/src/img:v1", f"{registry_b.host}/{unique_repo}:v1")
    output = result.out + result.err
    assert result.code == 1, output
    assert layer.digest in output
    # The failure is blamed on the source that cut the blob short, not on the destination.
    assert f"{fake_registry.host}/src/img@{layer.digest}" in output
    assert "connection lost" in output
    assert registry_b.host not in output
    assert fake_registry.count(f"/blobs/{layer.digest}", "GET") >= 2  # a dropped connection is retried
    assert c.list_tags(registry_b.url, unique_repo) == []
    assert blob_status(registry_b.url, unique_repo, layer.digest) == 404


# --- missing content and malformed references ------------------------------------------------


@pytest.mark.bad_input
def test_missing_tag_names_repo_and_tag(registry, registry_b, content, unique_repo, capsys):
    c.push(registry.url, unique_repo, content["helm"], tag="v1")
    result = run_ferry(capsys, "copy", f"{registry.host}/{unique_repo}:nope", f"{registry_b.host}/{unique_repo}:nope")
    assert result.code == 5  # not found
    assert f"{unique_repo}:nope" in result.out + result.err
    assert c.list_tags(registry_b.url, unique_repo) == []
    for blob in content["helm"].all_blobs():
        assert blob_status(registry_b.url, unique_repo, blob.digest) == 404


@pytest.mark.bad_input
def test_missing_repository(fake_registry, registry_b, unique_repo, capsys):
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/no/such:v1", f"{registry_b.host}/{unique_repo}:v1",
                       "--json")
    assert result.code == 5
    failed = result.json()["artifacts"][0]
    assert failed["status"] == "failed" and "no/such:v1" in failed["error"]
    assert fake_registry.count("/manifests/v1", "GET") == 1  # a 404 is not retried
    assert c.list_tags(registry_b.url, unique_repo) == []


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("source", "offending"),
    [
        ("{src}/UPPER/x:1", "UPPER/x"),
        ("{src}/Repo:1", "Repo"),
        ("{src}/x@sha256:abc", "sha256:abc"),
        ("{src}/x@sha256:" + "g" * 64, "sha256:" + "g" * 64),
        ("{src}/x:bad!tag", "bad!tag"),
    ],
)
def test_malformed_source_reference_exits_2(registry, registry_b, source, offending, unique_repo, capsys):
    text = source.format(src=registry.host)
    result = run_ferry(capsys, "copy", text, f"{registry_b.host}/{unique_repo}:v1")
    assert result.code == 2
    assert offending in result.err
    assert c.list_tags(registry_b.url, unique_repo) == []


@pytest.mark.bad_input
def test_malformed_destination_reference_exits_2(registry, registry_b, content, unique_repo, capsys):
    c.push(registry.url, unique_repo, content["helm"], tag="v1")
    result = run_ferry(capsys, "copy", f"{registry.host}/{unique_repo}:v1", f"{registry_b.host}/Bad/Name:v1")
    assert result.code == 2
    assert "Bad/Name" in result.err


# --- retries -------------------------------------------------------------------------------


@pytest.mark.fault
def test_transient_faults_are_retried(fake_registry, registry_b, unique_repo, capsys):
    image, layer = image_with_layer(seed=15)
    serve(fake_registry, "src/img", image)
    fake_registry.fail_next("/manifests/v1", 503, times=2)
    fake_registry.fail_next(f"/blobs/{layer.digest}", 429, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/src/img:v1", f"{registry_b.host}/{unique_repo}:v1",
                       "--json")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert fake_registry.count("/manifests/v1", "GET") == 3  # two 503s, then the answer
    assert fake_registry.count(f"/blobs/{layer.digest}", "GET") == 2  # one 429, then the bytes
    assert elapsed >= 1.0  # Retry-After: 1 was honoured
    assert c.get_manifest(registry_b.url, unique_repo, "v1")[1] == image.raw
    assert c.get_blob(registry_b.url, unique_repo, layer.digest) == layer.data


@pytest.mark.fault
def test_retries_are_bounded_and_permanent_errors_not_retried(fake_registry):
    image, _ = image_with_layer(seed=16)
    serve(fake_registry, "src/img", image)
    fake_registry.fail_next("/manifests/v1", 502, times=10)
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
    with RegistryClient(fake_registry.host, retry=policy) as client:
        with pytest.raises(TransientRegistryError, match="502"):
            client.get_manifest("src/img", "v1")
        assert fake_registry.count("/manifests/v1", "GET") == 3
        with pytest.raises(NotFoundError):
            client.get_manifest("src/img", "missing")
        assert fake_registry.count("/manifests/missing", "GET") == 1


# --- chunked upload with resume ----------------------------------------------------------------


@pytest.fixture
def big_image(registry, unique_repo) -> tuple[c.Manifest, c.Blob, str]:
    """An image with a ~2 MB layer, pushed to the session `registry` at unique_repo:v1."""
    layer = c.random_layer(2_000_000, 2024)
    image = c.oci_image([layer], seed=2024)
    c.push(registry.url, unique_repo, image, tag="v1")
    return image, layer, unique_repo


@pytest.fixture
def proxy(registry_b):
    proxy = FaultProxy(registry_b.host)
    yield proxy
    proxy.stop()


def copy_through(registry, proxy: FaultProxy, repo: str, target: str):
    with RegistryClient(registry.host) as src, \
            RegistryClient(proxy.host, chunk_size=256 * KiB, monolithic_limit=512 * KiB) as dst:
        return copy_artifacts(RegistrySource(src), RegistryDestination(dst), [CopyRequest(repo, "v1", target, ("v1",))])


@pytest.mark.fault
def test_chunked_upload_resumes_from_server_range(registry, registry_b, big_image, proxy, figures):
    image, layer, repo = big_image
    target = f"{repo}-resumed"
    # The third PATCH dies after its headers: the registry keeps the first two chunks.
    proxy.cut_request("PATCH", nth=3, after_body_bytes=0)
    report = copy_through(registry, proxy, repo, target)
    assert report.ok, report.failed
    assert proxy.cuts == 1
    assert c.get_blob(registry_b.url, target, layer.digest) == layer.data
    assert c.get_manifest(registry_b.url, target, "v1")[1] == image.raw
    # The client asked where the upload stood, then went on in the same session from there.
    assert proxy.count("/blobs/uploads/", "GET") == 1
    assert proxy.count("/blobs/uploads/", "POST") == 2  # the config (monolithic) and the layer: no restart
    chunks = -(-layer.size // (256 * KiB))
    assert proxy.count("/blobs/uploads/", "PATCH") == chunks + 1
    assert proxy.body_bytes["PATCH"] == layer.size  # every byte went through exactly once
    assert proxy.body_bytes["PATCH"] < 2 * layer.size
    figures.record("bytes re-sent", "chunked upload, 3rd PATCH cut after its headers",
                   proxy.body_bytes["PATCH"] - layer.size, of=layer.size)


@pytest.mark.fault
def test_chunked_upload_cut_mid_body_recovers(registry, registry_b, big_image, proxy, figures):
    """distribution keeps the partial bytes of a cut PATCH but then refuses the stale upload
    state (404 BLOB_UPLOAD_INVALID on the status GET) and cancels the session, so a mid-chunk
    resume is impossible there: the client must ask, then start a new session."""
    image, layer, repo = big_image
    target = f"{repo}-midbody"
    proxy.cut_request("PATCH", nth=2, after_body_bytes=100_000)
    report = copy_through(registry, proxy, repo, target)
    assert report.ok, report.failed
    assert proxy.cuts == 1
    assert c.get_blob(registry_b.url, target, layer.digest) == layer.data
    assert c.get_manifest(registry_b.url, target, "v1")[1] == image.raw
    assert proxy.count("/blobs/uploads/", "GET") >= 1  # the upload status was asked for
    # What went through before the cut (one chunk and 100 kB) plus the whole layer once more.
    assert proxy.body_bytes["PATCH"] == 256 * KiB + 100_000 + layer.size
    assert proxy.body_bytes["PATCH"] < 2 * layer.size
    figures.record("bytes re-sent", "chunked upload, 2nd PATCH cut mid-body (100 kB in)",
                   proxy.body_bytes["PATCH"] - layer.size, of=layer.size)
