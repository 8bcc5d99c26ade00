"""Test content built in-process, deterministic from seeds, and pushed with plain httpx.

Builders return `Manifest` objects holding the exact bytes to serve (`raw`); digests are taken
over those bytes. OCI manifests are compact JSON and Docker ones use 3-space indentation (as
``docker push`` writes them), so a client that re-serializes JSON changes digests and is caught.

`push` uploads blobs (skipping those the registry has), then child manifests by digest, then
the root by tag or digest. `push_referrer` also maintains the OCI referrers tag schema
(``sha256-<hex>`` index), since distribution 2.8 has no referrers API.
This module never imports `ferry`: it is the independent reference the tests compare against.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "ARTIFACT_TYPE_SBOM",
    "ARTIFACT_TYPE_SIGNATURE",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "EMPTY_CONFIG",
    "HELM_CHART",
    "HELM_CONFIG",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "Blob",
    "Manifest",
    "PushError",
    "RegistryAuth",
    "docker_image",
    "docker_manifest_list",
    "get_blob",
    "get_manifest",
    "helm_chart",
    "list_tags",
    "oci_image",
    "oci_index",
    "oras_artifact",
    "push",
    "push_referrer",
    "push_samples",
    "random_layer",
    "referrer",
    "referrers_tag",
    "registry_client",
    "sample_set",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ARTIFACT_TYPE_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
ARTIFACT_TYPE_SBOM = "application/spdx+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
TITLE = "org.opencontainers.image.title"
CREATED = "2024-01-01T00:00:00Z"

MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _docker_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=3).encode()


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob: config, layer or artifact file."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """``{"mediaType", "digest", "size"}`` plus `extra` keys (e.g. annotations)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


EMPTY_BLOB = Blob(EMPTY_CONFIG, b"{}")


@dataclass(eq=False)
class Manifest:
    """A manifest or index with the exact bytes to serve.

    `blobs` are this manifest's own config and layers (none for an index), `children` the
    manifests an index lists, `subject` the manifest a referrer points at (not pushed with it).
    `platform` is set for single-platform images, `artifact_type` for artifacts and referrers.
    """

    media_type: str
    raw: bytes = field(repr=False)
    blobs: list[Blob] = field(default_factory=list, repr=False)
    children: list[Manifest] = field(default_factory=list, repr=False)
    subject: Manifest | None = field(default=None, repr=False)
    platform: dict[str, str] | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def json(self) -> dict[str, Any]:
        """The parsed manifest (never serialize this back; use `raw`)."""
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """``{"mediaType", "digest", "size"}`` plus `extra` keys (platform, artifactType...)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def all_blobs(self) -> list[Blob]:
        """Every blob under this manifest (children included), each digest once, in push order."""
        seen: dict[str, Blob] = {}
        for manifest in self.all_manifests():
            for blob in manifest.blobs:
                seen.setdefault(blob.digest, blob)
        return list(seen.values())

    def all_manifests(self) -> list[Manifest]:
        """This manifest and its descendants, children before parents, each digest once."""
        out: dict[str, Manifest] = {}

        def visit(m: Manifest) -> None:
            for child in m.children:
                visit(child)
            out.setdefault(m.digest, m)

        visit(self)
        return list(out.values())


# --- builders ---------------------------------------------------------------------------


def _tar_gz(files: Sequence[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    """A deterministic (tar, tar.gz) pair holding `files` (mtime 0, root-owned, mode 0644)."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = tar_buf.getvalue()
    gz_buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buf, mtime=0, compresslevel=6) as gz:
        gz.write(tar_bytes)
    return tar_bytes, gz_buf.getvalue()


def random_layer(size: int = 20_000, seed: int = 0, *, media_type: str = OCI_LAYER) -> Blob:
    """A gzip'd tar holding one file of `size` random bytes (so the blob is about `size` bytes)."""
    data = random.Random(f"layer-{seed}-{size}").randbytes(size)
    _, gz = _tar_gz([(f"data/file-{seed}.bin", data)])
    return Blob(media_type, gz)


def _diff_id(layer: Blob) -> str:
    return sha256_digest(gzip.decompress(layer.data) if layer.media_type.endswith("gzip") else layer.data)


def _platform(platform: Sequence[str]) -> dict[str, str]:
    keys = ("os", "architecture", "variant")
    return {k: v for k, v in zip(keys, platform, strict=False)}


def _image_config(layers: Sequence[Blob], platform: dict[str, str], seed: int,
                  env: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "created": CREATED,
        "architecture": platform["architecture"],
        "os": platform["os"],
        **({"variant": platform["variant"]} if "variant" in platform else {}),
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
            "Cmd": ["/bin/sh"],
            "Labels": {"dev.ferry.test.seed": str(seed)},
        },
        "rootfs": {"type": "layers", "diff_ids": [_diff_id(layer) for layer in layers]},
        "history": [{"created": CREATED, "created_by": f"layer {i}"} for i in range(len(layers))],
    }


def oci_image(
    layers: Sequence[Blob],
    *,
    platform: Sequence[str] = ("linux", "amd64"),
    seed: int = 0,
    annotations: Mapping[str, str] | None = None,
    env: Sequence[str] = (),
) -> Manifest:
    """An OCI image manifest over `layers` (OCI layer media type enforced), with a real config
    (``env``: extra ``KEY=value`` entries of its ``config.Env``)."""
    layers = [b if b.media_type == OCI_LAYER else Blob(OCI_LAYER, b.data) for b in layers]
    plat = _platform(platform)
    config = Blob(OCI_CONFIG, _compact(_image_config(layers, plat, seed, env)))
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return Manifest(OCI_MANIFEST, _compact(doc), [config, *layers], platform=plat,
                    annotations=dict(annotations) if annotations else None)


def docker_image(
    layers: Sequence[Blob], *, platform: Sequence[str] = ("linux", "amd64"), seed: int = 0
) -> Manifest:
    """A Docker schema2 image (schema2 media types for manifest, config and layers)."""
    layers = [b if b.media_type == DOCKER_LAYER else Blob(DOCKER_LAYER, b.data) for b in layers]
    plat = _platform(platform)
    config = Blob(DOCKER_CONFIG, _compact(_image_config(layers, plat, seed)))
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    return Manifest(DOCKER_MANIFEST, _docker_json(doc), [config, *layers], platform=plat)


def _index_entries(images: Sequence[Manifest]) -> list[dict[str, Any]]:
    entries = []
    for image in images:
        if image.platform is None:
            raise ValueError("index entries need single-platform images")
        entries.append(image.descriptor(platform=image.platform))
    return entries


def oci_index(images: Sequence[Manifest], *, annotations: Mapping[str, str] | None = None) -> Manifest:
    """An OCI image index listing `images` with their platforms."""
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": _index_entries(images)}
    if annotations:
        doc["annotations"] = dict(annotations)
    return Manifest(OCI_INDEX, _compact(doc), children=list(images))


def docker_manifest_list(images: Sequence[Manifest]) -> Manifest:
    """A Docker manifest list over schema2 `images`."""
    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": _index_entries(images)}
    return Manifest(DOCKER_MANIFEST_LIST, _docker_json(doc), children=list(images))


def oras_artifact(
    files: Mapping[str, bytes | tuple[str, bytes]],
    artifact_type: str = "application/vnd.ferry.test.artifact.v1",
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """An OCI 1.1 artifact as ``oras push`` makes it: empty config, one titled layer per file.

    A file is ``bytes`` (media type ``application/vnd.ferry.test.file.v1``) or
    ``(media_type, bytes)``.
    """
    layers: list[Blob] = []
    descriptors = []
    for name, value in files.items():
        media_type, data = value if isinstance(value, tuple) else ("application/vnd.ferry.test.file.v1", value)
        blob = Blob(media_type, data)
        layers.append(blob)
        descriptors.append(blob.descriptor(annotations={TITLE: name}))
    notes = {"org.opencontainers.image.created": CREATED, **(annotations or {})}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_BLOB.descriptor(),
        "layers": descriptors,
        "annotations": notes,
    }
    return Manifest(OCI_MANIFEST, _compact(doc), [EMPTY_BLOB, *layers], artifact_type=artifact_type,
                    annotations=notes)


def helm_chart(name: str = "ferry-demo", version: str = "0.1.0") -> Manifest:
    """A Helm chart as ``helm push`` stores it: JSON Chart.yaml config, one .tgz layer."""
    meta = {
        "name": name,
        "version": version,
        "description": f"Test chart {name}",
        "apiVersion": "v2",
        "appVersion": "1.0.0",
        "type": "application",
    }
    chart_yaml = "".join(f"{k}: {v}\n" for k, v in meta.items()).encode()
    values = b"replicaCount: 1\n"
    _, tgz = _tar_gz([(f"{name}/Chart.yaml", chart_yaml), (f"{name}/values.yaml", values)])
    config = Blob(HELM_CONFIG, _compact(meta))
    layer = Blob(HELM_CHART, tgz)
    notes = {
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.description": meta["description"],
        TITLE: name,
        "org.opencontainers.image.version": version,
    }
    doc = {
        "schemaVersion": 2,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "annotations": notes,
    }
    return Manifest(OCI_MANIFEST, _compact(doc), [config, layer], annotations=notes)


def referrer(
    subject: Manifest,
    artifact_type: str = ARTIFACT_TYPE_SIGNATURE,
    payload: bytes = b'{"critical":{"type":"cosign container image signature"}}',
    *,
    payload_media_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """An OCI 1.1 referrer of `subject`: ``artifactType``, empty config, one payload layer, ``subject``.

    The payload's media type defaults to cosign's simplesigning type for signatures and to
    `artifact_type` otherwise.
    """
    if payload_media_type is None:
        payload_media_type = COSIGN_SIMPLESIGNING if artifact_type == ARTIFACT_TYPE_SIGNATURE else artifact_type
    layer = Blob(payload_media_type, payload)
    notes = {"org.opencontainers.image.created": CREATED, **(annotations or {})}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_BLOB.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
        "annotations": notes,
    }
    return Manifest(OCI_MANIFEST, _compact(doc), [EMPTY_BLOB, layer], subject=subject,
                    artifact_type=artifact_type, annotations=notes)


def sample_set(seed: int = 1) -> dict[str, Manifest]:
    """One of each kind, small (tens of KB), deterministic from `seed`.

    Keys: ``multiarch`` (OCI index, linux/amd64 + linux/arm64/v8, sharing a base layer),
    ``docker`` (schema2 image), ``docker_list`` (manifest list of two schema2 images),
    ``artifact`` (ORAS artifact, two files), ``helm`` (chart), and ``signature`` / ``sbom``
    (referrers whose subject is ``multiarch``).
    """
    base = random_layer(30_000, seed * 100)
    amd64 = oci_image([base, random_layer(20_000, seed * 100 + 1)], platform=("linux", "amd64"), seed=seed)
    arm64 = oci_image([base, random_layer(20_000, seed * 100 + 2)], platform=("linux", "arm64", "v8"), seed=seed)
    multiarch = oci_index([amd64, arm64])
    dbase = random_layer(25_000, seed * 100 + 3)
    docker = docker_image([dbase, random_layer(10_000, seed * 100 + 4)], seed=seed)
    d_amd64 = docker_image([dbase], platform=("linux", "amd64"), seed=seed + 1)
    d_arm64 = docker_image([random_layer(15_000, seed * 100 + 5)], platform=("linux", "arm64", "v8"), seed=seed)
    rng = random.Random(f"artifact-{seed}")
    artifact = oras_artifact(
        {"readme.txt": f"ferry test artifact {seed}\n".encode(),
         "data.bin": ("application/vnd.ferry.test.data.v1", rng.randbytes(12_000))},
        annotations={"dev.ferry.test.seed": str(seed)},
    )
    sbom_doc = {"spdxVersion": "SPDX-2.3", "name": f"ferry-sample-{seed}", "packages": []}
    return {
        "multiarch": multiarch,
        "docker": docker,
        "docker_list": docker_manifest_list([d_amd64, d_arm64]),
        "artifact": artifact,
        "helm": helm_chart("ferry-demo", f"0.{seed}.0"),
        "signature": referrer(multiarch, ARTIFACT_TYPE_SIGNATURE),
        "sbom": referrer(multiarch, ARTIFACT_TYPE_SBOM, _compact(sbom_doc),
                         annotations={"dev.ferry.test.kind": "sbom"}),
    }


# --- pushing and reading with plain httpx -------------------------------------------------


class PushError(RuntimeError):
    """A registry answered a push or read with an unexpected status."""


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _basic_header(credentials: tuple[str, str]) -> str:
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    """Basic and Bearer-challenge auth for the Distribution API (no credentials = anonymous).

    On a 401 it reads ``WWW-Authenticate``: Basic -> retries with basic auth and keeps sending
    it; Bearer -> fetches a token from the realm (GET, basic auth when credentials are given),
    asking for ``pull,push`` on the challenged repository, and keeps it until the next 401.
    """

    requires_response_body = True

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self._header: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic" and self.credentials:
            self._header = _basic_header(self.credentials)
        elif scheme == "bearer":
            params = dict(_PARAM.findall(challenge))
            query: dict[str, str] = {"service": params.get("service", "")}
            if "scope" in params:
                kind, _, rest = params["scope"].partition(":")
                name = rest.rpartition(":")[0]
                query["scope"] = f"{kind}:{name}:pull,push" if self.credentials and kind == "repository" \
                    else params["scope"]
            token_request = httpx.Request("GET", params["realm"], params=query)
            if self.credentials:
                token_request.headers["Authorization"] = _basic_header(self.credentials)
            token_response = yield token_request
            if token_response.status_code != 200:
                return
            body = token_response.json()
            self._header = f"Bearer {body.get('token') or body['access_token']}"
        else:
            return
        request.headers["Authorization"] = self._header
        yield request


def registry_client(server_url: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    """An httpx client for `server_url` with `RegistryAuth`; close it (or use ``with``)."""
    return httpx.Client(base_url=server_url, auth=RegistryAuth(auth), timeout=30.0)


@contextlib.contextmanager
def _maybe_client(
    server_url: str, auth: tuple[str, str] | None, client: httpx.Client | None
) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with registry_client(server_url, auth) as fresh:
        yield fresh


def _check(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise PushError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}"
        )
    return response


def _push_blob(client: httpx.Client, repo: str, blob: Blob) -> None:
    if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
        return
    start = _check(client.post(f"/v2/{repo}/blobs/uploads/"), 202)
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    _check(
        client.put(f"{location}{sep}digest={blob.digest}", content=blob.data,
                   headers={"Content-Type": "application/octet-stream"}),
        201,
    )


def _put_manifest(client: httpx.Client, repo: str, manifest: Manifest, ref: str) -> None:
    response = _check(
        client.put(f"/v2/{repo}/manifests/{ref}", content=manifest.raw,
                   headers={"Content-Type": manifest.media_type}),
        201,
    )
    got = response.headers.get("Docker-Content-Digest")
    if got and got != manifest.digest:
        raise PushError(f"registry computed {got} for {repo}:{ref}, expected {manifest.digest}")


def push(
    server_url: str,
    repo: str,
    manifest: Manifest,
    *,
    tag: str | None = None,
    auth: tuple[str, str] | None = None,
    client: httpx.Client | None = None,
) -> str:
    """Push `manifest` with all its blobs and children to `repo`; returns its digest.

    Blobs first (skipped when HEAD finds them), children by digest, then the root at `tag`
    (or by digest when `tag` is None). Raises `PushError` on any unexpected answer.
    `client` (from `registry_client`) lets many pushes share one connection pool.
    """
    with _maybe_client(server_url, auth, client) as http:
        for blob in manifest.all_blobs():
            _push_blob(http, repo, blob)
        for m in manifest.all_manifests():
            if m is not manifest:
                _put_manifest(http, repo, m, m.digest)
        _put_manifest(http, repo, manifest, tag or manifest.digest)
    return manifest.digest


def referrers_tag(digest: str) -> str:
    """The OCI referrers tag-schema tag for `digest`: ``sha256-<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"


def push_referrer(
    server_url: str,
    repo: str,
    ref: Manifest,
    *,
    auth: tuple[str, str] | None = None,
    client: httpx.Client | None = None,
) -> str:
    """Push referrer `ref` by digest and add it to the ``sha256-<subject hex>`` fallback index.

    The fallback index is created (empty OCI index) on first use; the descriptor carries
    ``artifactType`` and ``annotations`` as oras and cosign write them. Returns the digest.
    """
    if ref.subject is None:
        raise ValueError("not a referrer: no subject")
    tag = referrers_tag(ref.subject.digest)
    with _maybe_client(server_url, auth, client) as http:
        push(server_url, repo, ref, client=http)
        response = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_INDEX})
        if response.status_code == 404:
            index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        else:
            index = json.loads(_check(response, 200).content)
        if all(d.get("digest") != ref.digest for d in index["manifests"]):
            extra: dict[str, Any] = {}
            if ref.artifact_type:
                extra["artifactType"] = ref.artifact_type
            if ref.annotations:
                extra["annotations"] = ref.annotations
            index["manifests"].append(ref.descriptor(**extra))
        raw = _compact(index)
        _check(http.put(f"/v2/{repo}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_INDEX}), 201)
    return ref.digest


def push_samples(
    server_url: str,
    samples: Mapping[str, Manifest],
    *,
    prefix: str,
    tag: str = "v1",
    auth: tuple[str, str] | None = None,
) -> dict[str, str]:
    """Push each sample to ``<prefix>/<name>:<tag>``; referrers go to their subject's repo.

    Returns name -> repository. Referrers whose subject is not in `samples` are skipped.
    """
    repos: dict[str, str] = {}
    by_digest = {}
    with registry_client(server_url, auth) as client:
        for name, manifest in samples.items():
            if manifest.subject is None:
                repos[name] = f"{prefix}/{name.replace('_', '-')}"
                push(server_url, repos[name], manifest, tag=tag, client=client)
                by_digest[manifest.digest] = repos[name]
        for name, manifest in samples.items():
            if manifest.subject is not None and manifest.subject.digest in by_digest:
                repos[name] = by_digest[manifest.subject.digest]
                push_referrer(server_url, repos[name], manifest, client=client)
    return repos


def get_manifest(
    server_url: str, repo: str, ref: str, *, auth: tuple[str, str] | None = None
) -> tuple[str, bytes]:
    """(Content-Type, raw bytes) of a manifest by tag or digest; raises `PushError` unless 200."""
    with registry_client(server_url, auth) as client:
        response = _check(
            client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT}), 200
        )
        return response.headers.get("Content-Type", ""), response.content


def get_blob(server_url: str, repo: str, digest: str, *, auth: tuple[str, str] | None = None) -> bytes:
    """A blob's bytes (redirects followed); raises `PushError` unless 200."""
    with registry_client(server_url, auth) as client:
        return _check(client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True), 200).content


def list_tags(server_url: str, repo: str, *, auth: tuple[str, str] | None = None) -> list[str]:
    """The repository's tags, sorted ([] when the repository is unknown)."""
    with registry_client(server_url, auth) as client:
        response = client.get(f"/v2/{repo}/tags/list", params={"n": 10000})
        if response.status_code == 404:
            return []
        return sorted(_check(response, 200).json().get("tags") or [])
