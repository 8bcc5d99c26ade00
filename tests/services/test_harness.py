"""The harness itself, checked with outside clients (skopeo, oras-py, azure SDKs, httpx)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import content as c
from tests.harness.fakeregistry import FakeRegistry
from tests.harness.identity import CONFLICTING_ENV_VARS, ManagedIdentityStandIn
from tests.harness.procs import ManagedProcess, ServiceStartError, free_port
from tests.harness.registry import AcrLikeRegistry, RegistryServer
from tests.harness.tokenserver import ACR_NULL_USER, TokenServer

ROOT_KINDS = ["multiarch", "docker", "docker_list", "artifact", "helm"]


def skopeo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["skopeo", *args], capture_output=True, timeout=timeout, check=False)


def inspect_raw(host: str, ref: str, creds: str | None = None) -> subprocess.CompletedProcess[bytes]:
    extra = ["--creds", creds] if creds else []
    return skopeo("inspect", "--raw", "--tls-verify=false", *extra, f"docker://{host}/{ref}")


def creds_of(server: RegistryServer) -> str:
    assert server.username and server.password
    return f"{server.username}:{server.password}"


# --- procs -------------------------------------------------------------------------------


def test_managed_process_ready_stop_and_restart(tmp_path: Path) -> None:
    port = free_port()
    proc = ManagedProcess(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        log_dir=tmp_path, name="http",
    ).start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/", timeout=10)
        first_pid = proc.pid
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        proc.restart()
        assert proc.pid != first_pid and proc.running()
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        proc.stop()
    assert not proc.running() and proc.pid is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_managed_process_errors_carry_log_tail(tmp_path: Path) -> None:
    port = free_port()
    sleeper = ManagedProcess(
        [sys.executable, "-c", "print('sleepy-marker', flush=True); import time; time.sleep(30)"],
        log_dir=tmp_path, name="sleeper",
    ).start()
    try:
        with pytest.raises(ServiceStartError, match="sleepy-marker"):
            sleeper.wait_http(f"http://127.0.0.1:{port}/", timeout=0.5)
    finally:
        sleeper.stop(grace=1)
    crasher = ManagedProcess(
        [sys.executable, "-c", "import sys; print('crash-marker'); sys.exit(3)"], log_dir=tmp_path, name="crasher"
    ).start()
    with pytest.raises(ServiceStartError, match=r"exited \(code 3\)[\s\S]*crash-marker"):
        crasher.wait_http(f"http://127.0.0.1:{port}/", timeout=10)


# --- content builder ---------------------------------------------------------------------


def test_sample_set_is_deterministic_and_well_formed() -> None:
    one, again, two = c.sample_set(1), c.sample_set(1), c.sample_set(2)
    assert {k: m.digest for k, m in one.items()} == {k: m.digest for k, m in again.items()}
    assert one["multiarch"].digest != two["multiarch"].digest
    assert set(one) == {*ROOT_KINDS, "signature", "sbom"}

    index = one["multiarch"]
    amd64, arm64 = index.children
    assert [d["platform"] for d in index.json["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    assert amd64.blobs[1].digest == arm64.blobs[1].digest  # shared base layer
    assert len(index.all_blobs()) == 5  # 2 configs + shared base + 2 own layers
    assert [m.digest for m in index.all_manifests()] == [amd64.digest, arm64.digest, index.digest]
    for image in (amd64, arm64):
        config = json.loads(image.blobs[0].data)
        layers = image.blobs[1:]
        assert config["rootfs"]["diff_ids"] == [
            "sha256:" + hashlib.sha256(gzip.decompress(b.data)).hexdigest() for b in layers
        ]
        assert image.json["layers"] == [b.descriptor() for b in layers]
        with tarfile.open(fileobj=io.BytesIO(layers[0].data), mode="r:gz") as tar:
            (member,) = tar.getmembers()
            assert member.size == 30_000
        assert all(15_000 < b.size < 40_000 for b in layers)  # random data: gzip does not shrink it

    docker = one["docker"]
    assert docker.raw.startswith(b'{\n   "schemaVersion": 2')  # docker's 3-space indent
    assert [b.media_type for b in docker.blobs] == [c.DOCKER_CONFIG, c.DOCKER_LAYER, c.DOCKER_LAYER]

    helm = one["helm"]
    assert helm.json["config"]["mediaType"] == c.HELM_CONFIG
    with tarfile.open(fileobj=io.BytesIO(helm.blobs[1].data), mode="r:gz") as tar:
        chart = tar.extractfile("ferry-demo/Chart.yaml")
        assert chart is not None and b"version: 0.1.0" in chart.read()

    sig = one["signature"].json
    assert sig["subject"] == index.descriptor()
    assert sig["artifactType"] == c.ARTIFACT_TYPE_SIGNATURE
    assert sig["config"] == {"mediaType": c.EMPTY_CONFIG, "digest": c.sha256_digest(b"{}"), "size": 2}
    art = one["artifact"].json
    assert [layer["annotations"][c.TITLE] for layer in art["layers"]] == ["readme.txt", "data.bin"]


# --- real registries, checked with skopeo ------------------------------------------------


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, content: dict[str, c.Manifest]) -> dict[str, str]:
    """The sample set pushed once to `registry` under ``harness-samples/``: name -> repository."""
    return c.push_samples(registry.url, content, prefix="harness-samples")


@pytest.mark.parametrize("kind", ROOT_KINDS)
def test_skopeo_reads_pushed_bytes_exactly(
    registry: RegistryServer, content: dict[str, c.Manifest], pushed: dict[str, str], kind: str
) -> None:
    out = inspect_raw(registry.host, f"{pushed[kind]}:v1")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == content[kind].raw
    for child in content[kind].children:
        out = inspect_raw(registry.host, f"{pushed[kind]}@{child.digest}")
        assert out.stdout == child.raw


def test_skopeo_copy_all_between_registries(
    registry: RegistryServer, registry_b: RegistryServer, content: dict[str, c.Manifest], pushed: dict[str, str]
) -> None:
    for kind in ROOT_KINDS:
        repo = pushed[kind]
        out = skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                     f"docker://{registry.host}/{repo}:v1", f"docker://{registry_b.host}/{repo}:v1")
        assert out.returncode == 0, f"{kind}: {out.stderr.decode()}"
        media_type, raw = c.get_manifest(registry_b.url, repo, "v1")
        assert (media_type, raw) == (content[kind].media_type, content[kind].raw), kind
        for blob in content[kind].all_blobs():
            assert c.get_blob(registry_b.url, repo, blob.digest) == blob.data


def test_referrers_tag_schema_index(
    registry: RegistryServer, content: dict[str, c.Manifest], pushed: dict[str, str]
) -> None:
    repo = pushed["multiarch"]
    assert pushed["signature"] == pushed["sbom"] == repo
    tag = c.referrers_tag(content["multiarch"].digest)
    assert tag in c.list_tags(registry.url, repo)
    media_type, raw = c.get_manifest(registry.url, repo, tag)
    assert media_type == c.OCI_INDEX
    entries = json.loads(raw)["manifests"]
    assert [(e["digest"], e["artifactType"]) for e in entries] == [
        (content["signature"].digest, c.ARTIFACT_TYPE_SIGNATURE),
        (content["sbom"].digest, c.ARTIFACT_TYPE_SBOM),
    ]
    assert entries[1]["annotations"]["dev.ferry.test.kind"] == "sbom"
    c.push_referrer(registry.url, repo, content["sbom"])  # idempotent: no duplicate entry
    assert len(json.loads(c.get_manifest(registry.url, repo, tag)[1])["manifests"]) == 2
    out = inspect_raw(registry.host, f"{repo}@{content['sbom'].digest}")
    assert out.stdout == content["sbom"].raw


def test_registry_restart_keeps_port_and_storage(registry_factory, content: dict[str, c.Manifest]) -> None:
    server = registry_factory()
    c.push(server.url, "restart/me", content["docker"], tag="v1")
    pid = server.process.pid
    server.restart()
    assert server.process.pid != pid
    assert c.get_manifest(server.url, "restart/me", "v1")[1] == content["docker"].raw
    assert server.root.is_dir() and any(server.root.rglob("data"))


# --- auth --------------------------------------------------------------------------------


def test_htpasswd_registry(auth_registry: RegistryServer, content: dict[str, c.Manifest], unique_repo: str) -> None:
    assert auth_registry.auth == "htpasswd" and auth_registry.username == "ferry"
    assert httpx.get(f"{auth_registry.url}/v2/").status_code == 401
    assert httpx.get(f"{auth_registry.url}/v2/", auth=("ferry", "wrong")).status_code == 401
    assert httpx.get(f"{auth_registry.url}/v2/", auth=auth_registry.credentials).status_code == 200
    with pytest.raises(c.PushError, match="401"):
        c.push(auth_registry.url, unique_repo, content["helm"], tag="v1", auth=("ferry", "wrong"))
    c.push(auth_registry.url, unique_repo, content["helm"], tag="v1", auth=auth_registry.credentials)
    bad = inspect_raw(auth_registry.host, f"{unique_repo}:v1", "ferry:wrong")
    assert bad.returncode != 0 and b"unauthorized" in bad.stderr.lower()
    good = inspect_raw(auth_registry.host, f"{unique_repo}:v1", creds_of(auth_registry))
    assert good.returncode == 0 and good.stdout == content["helm"].raw


def test_token_registry(
    token_registry: RegistryServer, token_server: TokenServer, content: dict[str, c.Manifest], unique_repo: str
) -> None:
    challenge = httpx.get(f"{token_registry.url}/v2/").headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{token_server.realm}",service="{token_server.service}"'
    before = token_server.token_requests
    c.push(token_registry.url, unique_repo, content["multiarch"], tag="v1", auth=token_registry.credentials)
    assert token_server.token_requests > before
    out = inspect_raw(token_registry.host, f"{unique_repo}:v1", creds_of(token_registry))
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == content["multiarch"].raw
    # "reader" may pull but not push; wrong passwords get 401 from the token server
    reader = ("reader", token_server.users["reader"])
    assert c.get_manifest(token_registry.url, unique_repo, "v1", auth=reader)[1] == content["multiarch"].raw
    with pytest.raises(c.PushError, match="401"):
        c.push(token_registry.url, unique_repo + "-r", content["helm"], tag="v1", auth=reader)
    bad = httpx.get(token_server.realm, params={"service": token_server.service}, auth=("ferry", "nope"))
    assert bad.status_code == 401
    assert inspect_raw(token_registry.host, f"{unique_repo}:v1", "ferry:nope").returncode != 0
    # anonymous gets a token with no access, which the registry refuses
    anon = httpx.get(token_server.realm, params={"scope": f"repository:{unique_repo}:pull"}).json()["token"]
    assert httpx.get(f"{token_registry.url}/v2/{unique_repo}/tags/list",
                     headers={"Authorization": f"Bearer {anon}"}).status_code == 401


def test_token_server_oauth2_password_and_refresh(token_registry: RegistryServer, token_server: TokenServer) -> None:
    scope = "repository:oauth/check:pull,push"
    first = httpx.post(token_server.realm, data={
        "grant_type": "password", "username": "ferry", "password": token_server.users["ferry"],
        "service": token_server.service, "scope": scope, "client_id": "ferry-tests",
    }).json()
    again = httpx.post(token_server.realm, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "service": token_server.service, "scope": scope,
    })
    assert again.status_code == 200
    for token in (first["access_token"], again.json()["access_token"]):
        answer = httpx.post(f"{token_registry.url}/v2/oauth/check/blobs/uploads/",
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202
    assert httpx.post(token_server.realm, data={"grant_type": "refresh_token", "refresh_token": "bogus",
                                                "service": token_server.service}).status_code == 401
    assert token_server.grants[-1].access == [{"type": "repository", "name": "oauth/check",
                                               "actions": ["pull", "push"]}]


def test_acr_like_exchange(acr_like_registry: AcrLikeRegistry, content: dict[str, c.Manifest],
                           unique_repo: str) -> None:
    acr = acr_like_registry
    ts, reg = acr.token_server, acr.registry
    assert httpx.get(f"{reg.url}/v2/").headers["WWW-Authenticate"] == (
        f'Bearer realm="{ts.url}/oauth2/token",service="{reg.host}"'
    )
    c.push(reg.url, unique_repo, content["artifact"], tag="v1", auth=reg.credentials)  # admin user

    assert httpx.post(ts.exchange_url, data={"grant_type": "access_token", "service": reg.host,
                                             "access_token": "not-an-aad-token"}).status_code == 401
    exchanges = ts.exchange_requests
    refresh = httpx.post(ts.exchange_url, data={"grant_type": "access_token", "service": reg.host,
                                                "tenant": "t1", "access_token": acr.aad_token}).json()["refresh_token"]
    assert ts.exchange_requests == exchanges + 1
    access = httpx.post(ts.acr_realm, data={"grant_type": "refresh_token", "service": reg.host,
                                            "scope": f"repository:{unique_repo}:pull",
                                            "refresh_token": refresh}).json()["access_token"]
    answer = httpx.get(f"{reg.url}/v2/{unique_repo}/manifests/v1",
                       headers={"Authorization": f"Bearer {access}", "Accept": c.OCI_MANIFEST})
    assert answer.status_code == 200 and answer.content == content["artifact"].raw
    # docker login style: null GUID user + refresh token, here through skopeo
    out = inspect_raw(reg.host, f"{unique_repo}:v1", f"{ACR_NULL_USER}:{refresh}")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == content["artifact"].raw


def test_managed_identity_stand_in_with_default_credential(
    monkeypatch: pytest.MonkeyPatch, acr_like_registry: AcrLikeRegistry
) -> None:
    from azure.identity import DefaultAzureCredential

    identity: ManagedIdentityStandIn = acr_like_registry.identity
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in identity.env().items():
        monkeypatch.setenv(name, value)
    before = identity.requests
    started = time.monotonic()
    token = DefaultAzureCredential().get_token("https://management.azure.com/.default")
    assert time.monotonic() - started < 5
    assert token.token == acr_like_registry.aad_token
    assert token.expires_on > time.time() + 3000
    assert identity.requests == before + 1
    assert identity.resources[-1] == "https://management.azure.com"
    assert httpx.get(identity.endpoint, params={"api-version": "2019-08-01", "resource": "x"}).status_code == 401


# --- oras-py -----------------------------------------------------------------------------


def test_oras_pulls_builder_artifact(registry: RegistryServer, content: dict[str, c.Manifest],
                                     pushed: dict[str, str], tmp_path: Path) -> None:
    import oras.client

    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    files = client.pull(target=f"{registry.host}/{pushed['artifact']}:v1", outdir=str(tmp_path))
    assert sorted(Path(f).name for f in files) == ["data.bin", "readme.txt"]
    layers = content["artifact"].blobs[1:]
    assert (tmp_path / "readme.txt").read_bytes() == layers[0].data
    assert (tmp_path / "data.bin").read_bytes() == layers[1].data


# --- fake registry -----------------------------------------------------------------------


def test_fake_registry_serves_and_misbehaves(fake_registry: FakeRegistry, content: dict[str, c.Manifest]) -> None:
    fake = fake_registry
    image = content["docker"]
    fake.add_content("lib/app", image, tags=["v1"])
    out = inspect_raw(fake.host, "lib/app:v1")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == image.raw
    head = httpx.head(f"{fake.url}/v2/lib/app/manifests/v1")
    assert head.headers["Docker-Content-Digest"] == image.digest
    assert head.headers["Content-Type"] == c.DOCKER_MANIFEST
    assert int(head.headers["Content-Length"]) == image.size and head.content == b""

    lie = fake.add_blob(b"these are not the bytes", digest="sha256:" + "ab" * 32)
    body = httpx.get(f"{fake.url}/v2/lib/app/blobs/{lie}").content
    assert body == b"these are not the bytes" and c.sha256_digest(body) != lie

    layer = image.blobs[1]
    ranged = httpx.get(f"{fake.url}/v2/lib/app/blobs/{layer.digest}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == layer.data[10:20]

    gets_before = fake.count("/manifests/v1", "GET")  # skopeo's
    fake.fail_next("/manifests/v1", 503, times=2)
    fake.fail_next("/tags/list", 429, headers={"Retry-After": "1"})
    statuses = [httpx.get(f"{fake.url}/v2/lib/app/manifests/v1").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    throttled = httpx.get(f"{fake.url}/v2/lib/app/tags/list")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert httpx.get(f"{fake.url}/v2/lib/app/tags/list").json() == {"name": "lib/app", "tags": ["v1"]}

    fake.truncate_blob(layer.digest, 100)
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{fake.url}/v2/lib/app/blobs/{layer.digest}")
    assert fake.count("/manifests/v1", "GET") == gets_before + 3
    assert fake.count("/manifests/v1", "HEAD") == 1
    assert fake.count(f"/blobs/{layer.digest}") == 2
    assert httpx.put(f"{fake.url}/v2/lib/app/manifests/v2", content=b"{}").status_code == 405


def test_fake_registry_tags_pagination_and_referrers(content: dict[str, c.Manifest]) -> None:
    fake = FakeRegistry()
    try:
        index = content["multiarch"]
        fake.add_content("multi", index, tags=["a", "b", "c"])
        fake.add_content("multi", content["signature"])
        page = httpx.get(f"{fake.url}/v2/multi/tags/list", params={"n": 2})
        assert page.json()["tags"] == ["a", "b"]
        assert page.headers["Link"] == '</v2/multi/tags/list?n=2&last=b>; rel="next"'
        assert httpx.get(f"{fake.url}/v2/multi/tags/list", params={"n": 2, "last": "b"}).json()["tags"] == ["c"]
        referrers = httpx.get(f"{fake.url}/v2/multi/referrers/{index.digest}").json()
        assert [(d["digest"], d["artifactType"]) for d in referrers["manifests"]] == [
            (content["signature"].digest, c.ARTIFACT_TYPE_SIGNATURE)
        ]
        fake.referrers_api = False
        assert httpx.get(f"{fake.url}/v2/multi/referrers/{index.digest}").status_code == 404
    finally:
        fake.stop()


# --- Azurite -----------------------------------------------------------------------------


def test_azurite_two_accounts(azurite) -> None:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
    from azure.storage.blob import BlobServiceClient

    assert sorted(azurite.accounts) == ["acct1", "acct2"]
    for account in ("acct1", "acct2"):
        service = BlobServiceClient.from_connection_string(azurite.connection_string(account))
        container = service.create_container(f"check-{free_port()}")
        container.upload_blob("hello.txt", f"hello {account}".encode())
        assert container.download_blob("hello.txt").readall() == f"hello {account}".encode()
        assert service.account_name == account
    # acct1's key does not open acct2
    forged = azurite.connection_string("acct2").replace(azurite.accounts["acct2"], azurite.accounts["acct1"])
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as info:
        list(BlobServiceClient.from_connection_string(forged).list_containers())
    assert info.value.status_code == 403
