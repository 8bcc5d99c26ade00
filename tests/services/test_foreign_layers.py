"""Non-distributable (foreign) layers: kept as URLs by default, shipped with --include-foreign-layers.

The image is Docker schema2 with one foreign layer (``rootfs.foreign.diff.tar.gzip`` with
``urls`` on a loopback HTTP server, never pushed to any registry) and one normal layer. The
registries are configured (``validation.manifests.urls.allow``) to accept those URLs.
"""

from __future__ import annotations

import contextlib
import json
import re
import tarfile
import threading
from pathlib import Path

import httpx

from tests.harness import content as c
from tests.harness._http import LoopbackServer, QuietHandler
from tests.helpers import run_ferry

FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


class _FileHandler(QuietHandler):
    def handle(self) -> None:
        # A client that hangs up early (after a digest mismatch, say) is no server fault.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_GET(self) -> None:
        owner: ForeignServer = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.requests.append((self.path, self.headers.get("Authorization")))
        body = owner.files.get(self.path)
        if body is None:
            self.reply(404, b"not found", content_type="text/plain")
        else:
            self.reply(200, body, content_type="application/octet-stream")


class ForeignServer:
    """Serves ``files`` (path -> bytes) on loopback, like a CDN holding foreign layers; records
    each request's (path, Authorization header)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self._server = LoopbackServer(_FileHandler, self)
        self.url = self._server.url

    @property
    def allow(self) -> list[str]:
        """The registry allow-list pattern for this server's URLs."""
        return [f"^{re.escape(self.url)}/"]

    def stop(self) -> None:
        self._server.stop()


def _foreign_image(server: ForeignServer, paths: list[str], seed: int = 0) -> tuple[c.Manifest, c.Blob]:
    """(image, foreign layer): a schema2 image whose first layer is foreign with URLs ``server.url + path``.

    The image's ``blobs`` leave the foreign layer out, so `c.push` does not upload it.
    """
    foreign = c.random_layer(30_000, seed=100 + seed)
    normal = c.random_layer(10_000, seed=200 + seed)
    base = c.docker_image([foreign, normal], seed=seed)
    doc = json.loads(base.raw)
    doc["layers"][0]["mediaType"] = FOREIGN
    doc["layers"][0]["urls"] = [server.url + p for p in paths]
    raw = json.dumps(doc, indent=3).encode()
    config, _, normal_blob = base.blobs
    image = c.Manifest(c.DOCKER_MANIFEST, raw, [config, normal_blob], platform=base.platform)
    return image, c.Blob(FOREIGN, foreign.data)


def _setup(registry_factory, **kwargs):
    server = ForeignServer()
    image, foreign = _foreign_image(server, ["/layers/foreign.tar.gz"], **kwargs)
    server.files["/layers/foreign.tar.gz"] = foreign.data
    source = registry_factory("htpasswd", allow_foreign_urls=server.allow)
    c.push(source.url, "win/app", image, tag="v1", auth=source.credentials)
    return server, source, image, foreign


def _creds(registry) -> str:
    return f"{registry.username}:{registry.password}"


def _blob_status(registry, repo: str, digest: str) -> int:
    return httpx.head(f"{registry.url}/v2/{repo}/blobs/{digest}").status_code


def _inspect_digests(capsys, archive: Path) -> list[str]:
    result = run_ferry(capsys, "inspect", str(archive), "--json")
    assert result.code == 0, result.err + result.out
    return result.json()["blob_digests"]


def _archive_member(archive: Path, digest: str) -> bytes:
    with tarfile.open(archive, "r:") as tar:
        member = tar.extractfile("blobs/" + digest.replace(":", "/"))
        assert member is not None
        return member.read()


def test_source_registry_holds_no_foreign_blob(registry_factory):
    """The premise: the foreign layer is only at its URL, and only an allow-listed registry takes the manifest."""
    server, source, image, foreign = _setup(registry_factory)
    try:
        assert httpx.head(f"{source.url}/v2/win/app/blobs/{foreign.digest}",
                          auth=source.credentials).status_code == 404
        strict = registry_factory()  # no allow list: distribution rejects manifests with foreign URLs
        response = httpx.put(f"{strict.url}/v2/win/app/manifests/v1", content=image.raw,
                             headers={"Content-Type": c.DOCKER_MANIFEST})
        assert response.status_code == 400, response.text
    finally:
        server.stop()


def test_default_export_keeps_urls_only(registry_factory, tmp_path, capsys):
    server, source, image, foreign = _setup(registry_factory)
    try:
        archive = tmp_path / "default.tar"
        result = run_ferry(capsys, "export", f"{source.host}/win/app:v1", "--to", str(archive),
                           "--src-creds", _creds(source), "--json")
        assert result.code == 0, result.err + result.out
        assert server.requests == []  # nothing fetched from the foreign URL
    finally:
        server.stop()
    digests = _inspect_digests(capsys, archive)
    assert foreign.digest not in digests
    assert {b.digest for b in image.blobs} <= set(digests)

    target = registry_factory(allow_foreign_urls=server.allow)
    result = run_ferry(capsys, "import", str(archive), "--to", target.host, "--json")
    assert result.code == 0, result.err + result.out
    _, raw = c.get_manifest(target.url, "win/app", "v1")
    assert raw == image.raw
    assert result.json()["artifacts"][0]["digest"] == image.digest
    assert _blob_status(target, "win/app", foreign.digest) == 404  # still only at its URL


def test_include_foreign_layers_ships_them_for_air_gapped_import(registry_factory, tmp_path, capsys):
    server, source, image, foreign = _setup(registry_factory)
    try:
        archive = tmp_path / "with-foreign.tar"
        result = run_ferry(capsys, "export", f"{source.host}/win/app:v1", "--to", str(archive),
                           "--src-creds", _creds(source), "--include-foreign-layers", "--json")
        assert result.code == 0, result.err + result.out
        assert server.requests and all(path == "/layers/foreign.tar.gz" for path, _ in server.requests)
        assert all(auth is None for _, auth in server.requests)  # registry credentials stay home
    finally:
        server.stop()  # air-gapped from here on: the URL no longer answers
    assert foreign.digest in _inspect_digests(capsys, archive)
    assert _archive_member(archive, foreign.digest) == foreign.data

    target = registry_factory(allow_foreign_urls=server.allow)
    result = run_ferry(capsys, "import", str(archive), "--to", target.host, "--json")
    assert result.code == 0, result.err + result.out
    _, raw = c.get_manifest(target.url, "win/app", "v1")
    assert raw == image.raw
    assert _blob_status(target, "win/app", foreign.digest) == 200
    assert c.get_blob(target.url, "win/app", foreign.digest) == foreign.data


def test_wrong_bytes_at_foreign_url_fail_the_export(registry_factory, tmp_path, capsys):
    server, source, _, foreign = _setup(registry_factory, seed=1)
    server.files["/layers/foreign.tar.gz"] = bytes(reversed(foreign.data))  # same size, wrong digest
    try:
        archive = tmp_path / "bad.tar"
        result = run_ferry(capsys, "export", f"{source.host}/win/app:v1", "--to", str(archive),
                           "--src-creds", _creds(source), "--include-foreign-layers")
    finally:
        server.stop()
    assert result.code != 0
    output = result.err + result.out
    assert foreign.digest in output and "digest mismatch" in output, output
    assert not archive.exists()


def test_urls_tried_in_turn_and_named_when_none_works(registry_factory, tmp_path, capsys):
    server = ForeignServer()
    try:
        image, foreign = _foreign_image(server, ["/gone/a.tar.gz", "/mirror/b.tar.gz"], seed=2)
        source = registry_factory(allow_foreign_urls=server.allow)
        c.push(source.url, "win/app", image, tag="v1")

        result = run_ferry(capsys, "export", f"{source.host}/win/app:v1", "--to", str(tmp_path / "none.tar"),
                           "--include-foreign-layers")
        assert result.code != 0
        output = result.err + result.out
        assert foreign.digest in output
        assert f"{server.url}/gone/a.tar.gz" in output and f"{server.url}/mirror/b.tar.gz" in output, output

        server.files["/mirror/b.tar.gz"] = foreign.data  # the second URL answers: the first 404 is skipped
        archive = tmp_path / "second.tar"
        result = run_ferry(capsys, "export", f"{source.host}/win/app:v1", "--to", str(archive),
                           "--include-foreign-layers")
        assert result.code == 0, result.err + result.out
        assert _archive_member(archive, foreign.digest) == foreign.data
    finally:
        server.stop()


def test_copy_registry_to_registry(registry_factory, capsys):
    server, source, image, foreign = _setup(registry_factory, seed=3)
    try:
        target = registry_factory(allow_foreign_urls=server.allow)
        result = run_ferry(capsys, "copy", f"{source.host}/win/app:v1", f"{target.host}/plain/app:v1",
                           "--src-creds", _creds(source), "--json")
        assert result.code == 0, result.err + result.out
        assert _blob_status(target, "plain/app", foreign.digest) == 404  # default: URLs only

        result = run_ferry(capsys, "copy", f"{source.host}/win/app:v1", f"{target.host}/full/app:v1",
                           "--src-creds", _creds(source), "--include-foreign-layers", "--json")
        assert result.code == 0, result.err + result.out
    finally:
        server.stop()
    _, raw = c.get_manifest(target.url, "full/app", "v1")
    assert raw == image.raw
    assert _blob_status(target, "full/app", foreign.digest) == 200
    assert c.get_blob(target.url, "full/app", foreign.digest) == foreign.data
