"""ferry.azure.blob and ferry.azure.keyvault against real Azurite (one instance, accounts acct1 and acct2)
and the Key Vault stand-in: server-side and relay copies, resume, overwrite, SAS, Key Vault, CLI."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote

import pytest
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_blob_sas,
    generate_container_sas,
)

from ferry.azure import blob as storage
from ferry.azure.blob import (
    BlobLocation,
    ConnectionStringAuth,
    ManagedIdentityAuth,
    SasTokenAuth,
    delete_blob,
)
from ferry.azure.blobcopy import copy_blob, server_copy_status
from ferry.azure.keyvault import parse_secret_uri, resolve_secret
from ferry.errors import BlobNotFoundError, ConflictError, StorageAuthError, UsageError
from tests.harness.azurite import AzuriteServer
from tests.harness.identity import CONFLICTING_ENV_VARS
from tests.helpers import run_ferry

MiB = 1024 * 1024
META = {"ferryformat": "1", "artifactcount": "3", "catalogdigest": "sha256:" + "ab" * 32}


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    storage.clear_client_cache()
    yield
    storage.clear_client_cache()


@pytest.fixture
def containers(azurite: AzuriteServer) -> dict[str, str]:
    """A fresh container in each account (same name), created with the plain SDK."""
    name = f"c{secrets.token_hex(6)}"
    for account in ("acct1", "acct2"):
        BlobServiceClient.from_connection_string(azurite.connection_string(account)).create_container(name)
    return {"acct1": name, "acct2": name}


def sdk(azurite: AzuriteServer, account: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string(account))


def upload(azurite: AzuriteServer, account: str, container: str, name: str, data: bytes,
           metadata: dict[str, str] | None = None) -> BlobLocation:
    sdk(azurite, account).get_blob_client(container, name).upload_blob(
        data, metadata=metadata, overwrite=True,
        content_settings=ContentSettings(content_type="application/x-tar"))
    return BlobLocation.parse(f"{azurite.blob_endpoint(account)}/{container}/{name}")


def download(azurite: AzuriteServer, account: str, container: str, name: str) -> bytes:
    return sdk(azurite, account).get_blob_client(container, name).download_blob().readall()


def properties(azurite: AzuriteServer, account: str, container: str, name: str):
    return sdk(azurite, account).get_blob_client(container, name).get_blob_properties()


def keys_auth(azurite: AzuriteServer) -> ConnectionStringAuth:
    return ConnectionStringAuth(tuple(azurite.connection_strings.values()))


def loc(azurite: AzuriteServer, account: str, container: str, name: str, sas: str | None = None) -> BlobLocation:
    url = f"{azurite.blob_endpoint(account)}/{container}/{name}"
    return BlobLocation.parse(url + (f"?{sas}" if sas else ""))


def blob_sas(azurite: AzuriteServer, account: str, container: str, name: str, expiry: datetime,
             **permissions: bool) -> str:
    return generate_blob_sas(account, container, name, account_key=azurite.accounts[account],
                             permission=BlobSasPermissions(**permissions), expiry=expiry,
                             start=datetime.now(UTC) - timedelta(hours=2))


def sig_of(sas: str) -> str:
    return parse_qs(sas)["sig"][0]


# ---------------------------------------------------------------------------- pure parsing


def test_parse_blob_urls() -> None:
    public = BlobLocation.parse("https://myacct.blob.core.windows.net/transfers/exports/a.tar?sv=2022&sig=SECRET%3D")
    assert (public.account, public.container, public.blob) == ("myacct", "transfers", "exports/a.tar")
    assert public.endpoint == "https://myacct.blob.core.windows.net"
    assert public.sas == "sv=2022&sig=SECRET%3D"
    assert str(public) == public.display == "https://myacct.blob.core.windows.net/transfers/exports/a.tar"
    assert "SECRET" not in repr(public)
    local = BlobLocation.parse("http://127.0.0.1:10000/acct1/c01/dir/x.tar")
    assert (local.endpoint, local.account, local.container, local.blob, local.sas) == (
        "http://127.0.0.1:10000/acct1", "acct1", "c01", "dir/x.tar", None)


@pytest.mark.parametrize("url", [
    "ftp://acct.blob.core.windows.net/c/b?sig=TOPSECRET",
    "https://acct.blob.core.windows.net/c?sig=TOPSECRET",
    "https://example.com/c/b?sig=TOPSECRET",
    "http://127.0.0.1:1/acct1/c1?sig=TOPSECRET",
    "https://acct.blob.core.windows.net/Bad_Container/b?sig=TOPSECRET",
])
def test_bad_blob_urls_name_the_url_redacted(url: str) -> None:
    with pytest.raises(UsageError) as info:
        BlobLocation.parse(url)
    assert url.split("?")[0] in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_secret_uri_validation() -> None:
    ref = parse_secret_uri("https://v1.vault.azure.net/secrets/export-sas/0123abcd")
    assert (ref.vault_url, ref.name, ref.version) == ("https://v1.vault.azure.net", "export-sas", "0123abcd")
    for bad in ("http://v1.vault.azure.net/secrets/x", "https://v1.vault.azure.net/keys/x",
                "https://v1.vault.azure.net/secrets/", "https://v1.vault.azure.net/secrets/a_b"):
        with pytest.raises(UsageError, match="secret URI"):
            parse_secret_uri(bad)


# ---------------------------------------------------------------------------- copies


def test_server_copy_between_accounts(azurite: AzuriteServer, containers: dict[str, str]) -> None:
    data = os.urandom(3 * MiB + 17)
    src = upload(azurite, "acct1", containers["acct1"], "exp/a.tar", data, META)
    dst = loc(azurite, "acct2", containers["acct2"], "imp/a.tar")
    auth = keys_auth(azurite)
    result = copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode="server")
    assert result.mode == "server" and result.copy_id
    assert result.size == len(data) and result.metadata == META
    assert download(azurite, "acct2", containers["acct2"], "imp/a.tar") == data
    assert properties(azurite, "acct2", containers["acct2"], "imp/a.tar").metadata == META
    assert server_copy_status(dst, auth) == ("success", len(data), len(data))


@pytest.mark.parametrize(("src_account", "dst_account"), [("acct1", "acct2"), ("acct2", "acct1")])
def test_relay_copy_both_ways(azurite: AzuriteServer, containers: dict[str, str],
                              src_account: str, dst_account: str) -> None:
    data = os.urandom(20 * MiB + 123)
    src = upload(azurite, src_account, containers[src_account], "big.tar", data, META)
    dst = loc(azurite, dst_account, containers[dst_account], "big-copy.tar")
    auth = keys_auth(azurite)
    result = copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode="relay", block_size=4 * MiB, parallel=3)
    assert (result.blocks_total, result.blocks_staged, result.blocks_skipped) == (6, 6, 0)
    assert result.bytes_moved == len(data)
    assert download(azurite, dst_account, containers[dst_account], "big-copy.tar") == data
    props = properties(azurite, dst_account, containers[dst_account], "big-copy.tar")
    assert props.metadata == META and props.content_settings.content_type == "application/x-tar"


class Interrupt(Exception):
    pass


class StopAfter:
    """A progress listener that interrupts the copy after `blocks` blocks have been staged."""

    def __init__(self, blocks: int) -> None:
        self.blocks, self.seen = blocks, 0

    def planned(self, total_bytes: int, total_blobs: int, artifacts: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        self.seen += 1
        if self.seen >= self.blocks:
            raise Interrupt


def test_relay_resume_stages_only_missing_blocks(azurite: AzuriteServer, containers: dict[str, str]) -> None:
    data = os.urandom(20 * MiB)
    src = upload(azurite, "acct1", containers["acct1"], "resume.tar", data, META)
    dst = loc(azurite, "acct2", containers["acct2"], "resume.tar")
    auth = keys_auth(azurite)
    with pytest.raises(Interrupt):
        copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode="relay", block_size=4 * MiB, parallel=1,
                  progress=StopAfter(2))
    dst_sdk = sdk(azurite, "acct2").get_blob_client(containers["acct2"], "resume.tar")
    assert not dst_sdk.exists()  # nothing committed: the blob is all or nothing
    result = copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode="relay", block_size=4 * MiB, parallel=4)
    assert result.blocks_total == 5
    assert result.blocks_skipped >= 2
    assert result.blocks_staged == result.blocks_total - result.blocks_skipped
    assert dst_sdk.download_blob().readall() == data
    assert dst_sdk.get_blob_properties().metadata == META


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_existing_destination_is_refused_unless_overwrite(azurite: AzuriteServer, containers: dict[str, str],
                                                          mode: str) -> None:
    src = upload(azurite, "acct1", containers["acct1"], "new.tar", b"new bytes" * 1000, META)
    upload(azurite, "acct2", containers["acct2"], "there.tar", b"old", {"old": "1"})
    dst = loc(azurite, "acct2", containers["acct2"], "there.tar")
    auth = keys_auth(azurite)
    with pytest.raises(ConflictError) as info:
        copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode=mode)  # type: ignore[arg-type]
    assert dst.url in str(info.value)
    assert download(azurite, "acct2", containers["acct2"], "there.tar") == b"old"
    assert properties(azurite, "acct2", containers["acct2"], "there.tar").metadata == {"old": "1"}
    copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode=mode, overwrite=True)  # type: ignore[arg-type]
    assert download(azurite, "acct2", containers["acct2"], "there.tar") == b"new bytes" * 1000
    assert properties(azurite, "acct2", containers["acct2"], "there.tar").metadata == META


def test_missing_source_names_the_blob(azurite: AzuriteServer, containers: dict[str, str]) -> None:
    src = loc(azurite, "acct1", containers["acct1"], "absent.tar")
    dst = loc(azurite, "acct2", containers["acct2"], "absent.tar")
    with pytest.raises(BlobNotFoundError, match=src.url.replace(".", r"\.")):
        copy_blob(src, dst, src_auth=keys_auth(azurite), dst_auth=keys_auth(azurite), mode="relay")


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_expired_sas_fails_clearly_without_the_signature(azurite: AzuriteServer, containers: dict[str, str],
                                                         mode: str) -> None:
    upload(azurite, "acct1", containers["acct1"], "old-sas.tar", b"x" * 4096, META)
    sas = blob_sas(azurite, "acct1", containers["acct1"], "old-sas.tar", datetime.now(UTC) - timedelta(hours=1),
                   read=True)
    src = loc(azurite, "acct1", containers["acct1"], "old-sas.tar", sas)
    dst = loc(azurite, "acct2", containers["acct2"], "old-sas.tar")
    with pytest.raises(StorageAuthError) as info:
        copy_blob(src, dst, dst_auth=keys_auth(azurite), mode=mode)  # type: ignore[arg-type]
    message = str(info.value)
    assert "SAS may be expired" in message and src.url in message
    signature = sig_of(sas)
    for text in (message, repr(info.value)):
        assert signature not in text and quote(signature, safe="") not in text
    assert not sdk(azurite, "acct2").get_blob_client(containers["acct2"], "old-sas.tar").exists()


def test_delete_blob(azurite: AzuriteServer, containers: dict[str, str]) -> None:
    location = upload(azurite, "acct1", containers["acct1"], "gone.tar", b"bye")
    assert delete_blob(location, keys_auth(azurite)) is True
    assert not sdk(azurite, "acct1").get_blob_client(containers["acct1"], "gone.tar").exists()
    assert delete_blob(location, keys_auth(azurite), missing_ok=True) is False
    with pytest.raises(BlobNotFoundError, match=r"gone\.tar"):
        delete_blob(location, keys_auth(azurite))


def test_connection_string_must_match_the_account(azurite: AzuriteServer, containers: dict[str, str]) -> None:
    only_acct1 = ConnectionStringAuth((azurite.connection_string("acct1"),))
    src = upload(azurite, "acct1", containers["acct1"], "cs.tar", b"abc")
    dst = loc(azurite, "acct2", containers["acct2"], "cs.tar")
    with pytest.raises(UsageError, match="acct2"):
        copy_blob(src, dst, src_auth=only_acct1, dst_auth=only_acct1, mode="relay")


# ---------------------------------------------------------------------------- Key Vault


@pytest.fixture
def identity_env(keyvault, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in keyvault.identity.env().items():
        monkeypatch.setenv(name, value)


def test_resolve_secret_through_challenge(keyvault, identity_env: None) -> None:
    uri = keyvault.set_secret(f"s{secrets.token_hex(4)}", "sv=1&sig=abc")
    before = (keyvault.server.challenges, keyvault.server.authorized)
    assert resolve_secret(uri, ca_bundle=keyvault.ca_bundle) == "sv=1&sig=abc"
    assert keyvault.server.authorized == before[1] + 1
    assert keyvault.identity.token in keyvault.server.tokens_seen
    with pytest.raises(BlobNotFoundError, match="nope"):
        resolve_secret(keyvault.secret_uri("nope"), ca_bundle=keyvault.ca_bundle)


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_copy_with_sas_from_key_vault(azurite: AzuriteServer, containers: dict[str, str], keyvault,
                                      identity_env: None, mode: str) -> None:
    data = os.urandom(2 * MiB + 5)
    upload(azurite, "acct1", containers["acct1"], "kv.tar", data, META)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    read_sas = blob_sas(azurite, "acct1", containers["acct1"], "kv.tar", expiry, read=True)
    write_sas = generate_container_sas("acct2", containers["acct2"], account_key=azurite.accounts["acct2"],
                                       permission=ContainerSasPermissions(read=True, write=True, create=True),
                                       expiry=expiry)
    src_secret = keyvault.set_secret(f"src{secrets.token_hex(4)}", read_sas)
    dst_secret = keyvault.set_secret(f"dst{secrets.token_hex(4)}", "?" + write_sas)
    authorized = keyvault.server.authorized
    src = loc(azurite, "acct1", containers["acct1"], "kv.tar")
    dst = loc(azurite, "acct2", containers["acct2"], f"kv-{mode}.tar")
    result = copy_blob(src, dst, mode=mode, block_size=1 * MiB,  # type: ignore[arg-type]
                       src_auth=SasTokenAuth(secret_uri=src_secret, ca_bundle=keyvault.ca_bundle),
                       dst_auth=SasTokenAuth(secret_uri=dst_secret, ca_bundle=keyvault.ca_bundle))
    assert result.metadata == META
    assert download(azurite, "acct2", containers["acct2"], f"kv-{mode}.tar") == data
    assert keyvault.server.authorized >= authorized + 2


# ---------------------------------------------------------------------------- managed identity


def test_managed_identity_clients_are_pooled_default_azure_credential_clients() -> None:
    from azure.identity import DefaultAzureCredential

    location = BlobLocation.parse("https://myacct.blob.core.windows.net/transfers/a.tar")
    client = storage.blob_client(location, ManagedIdentityAuth())
    assert isinstance(client.credential, DefaultAzureCredential)
    assert client.url == location.url
    # Same endpoint and auth: one pooled service client.
    other = BlobLocation.parse("https://myacct.blob.core.windows.net/transfers/b.tar")
    assert storage.service_client(location, ManagedIdentityAuth()) is storage.service_client(other,
                                                                                           ManagedIdentityAuth())


def test_managed_identity_over_plain_http_is_a_clear_usage_error(azurite: AzuriteServer,
                                                                 containers: dict[str, str]) -> None:
    location = loc(azurite, "acct1", containers["acct1"], "mi.tar")
    # Azurite here serves plain HTTP; bearer tokens need HTTPS, and Ferry says so clearly.
    with pytest.raises(UsageError, match="https"):
        copy_blob(location, loc(azurite, "acct2", containers["acct2"], "mi.tar"),
                  src_auth=ManagedIdentityAuth(), dst_auth=keys_auth(azurite), mode="relay")


# ---------------------------------------------------------------------------- CLI and logs


@pytest.mark.parametrize("relay", [False, True])
def test_cli_copy_blob_json(azurite: AzuriteServer, containers: dict[str, str], capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch, relay: bool) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    data = os.urandom(MiB + 1)
    src = upload(azurite, "acct1", containers["acct1"], "cli.tar", data, META)
    dst = loc(azurite, "acct2", containers["acct2"], "cli.tar")
    args = ["copy-blob", src.url, dst.url, "--json", "--block-size", "1",
            "--connection-string", azurite.connection_string("acct1"),
            "--connection-string", azurite.connection_string("acct2")] + (["--relay"] if relay else [])
    result = run_ferry(capsys, *args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["mode"] == ("relay" if relay else "server")
    assert report["size"] == len(data) and report["metadata"] == META
    assert report["destination"] == dst.url
    assert download(azurite, "acct2", containers["acct2"], "cli.tar") == data
    again = run_ferry(capsys, *args)
    assert again.code == 7 and dst.url in again.err and "already exists" in again.err
    for key in azurite.accounts.values():
        assert key not in result.out + result.err + again.err


def test_cli_env_connection_string_and_bad_url(azurite: AzuriteServer, containers: dict[str, str],
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = upload(azurite, "acct1", containers["acct1"], "env.tar", b"hello", META)
    dst = loc(azurite, "acct1", containers["acct1"], "env-copy.tar")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string("acct1"))
    assert run_ferry(capsys, "copy-blob", src.url, dst.url, "--relay").code == 0
    assert download(azurite, "acct1", containers["acct1"], "env-copy.tar") == b"hello"
    bad = run_ferry(capsys, "copy-blob", "https://example.com/x?sig=HUSH", dst.url)
    assert bad.code == 2 and "example.com" in bad.err and "HUSH" not in bad.err


@pytest.mark.parametrize("mode", ["server", "relay"])
def test_sas_signature_never_logged(azurite: AzuriteServer, containers: dict[str, str],
                                    caplog: pytest.LogCaptureFixture, mode: str) -> None:
    upload(azurite, "acct1", containers["acct1"], "logged.tar", os.urandom(MiB), META)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    sas = blob_sas(azurite, "acct1", containers["acct1"], "logged.tar", expiry, read=True)
    dst_sas = generate_container_sas("acct2", containers["acct2"], account_key=azurite.accounts["acct2"],
                                     permission=ContainerSasPermissions(read=True, write=True, create=True),
                                     expiry=expiry)
    src = loc(azurite, "acct1", containers["acct1"], "logged.tar", sas)
    dst = loc(azurite, "acct2", containers["acct2"], f"logged-{mode}.tar", dst_sas)
    caplog.set_level(logging.DEBUG, logger="azure")
    caplog.set_level(logging.DEBUG, logger="ferry")
    copy_blob(src, dst, mode=mode, block_size=256 * 1024)  # type: ignore[arg-type]
    text = caplog.text
    assert "acct1" in text and "logged.tar" in text  # the SDK did log its requests
    if mode == "server":
        assert "x-ms-copy-source" in text.lower()
    for signature in (sig_of(sas), sig_of(dst_sas)):
        assert signature not in text and quote(signature, safe="") not in text


# ---------------------------------------------------------------------------- managed identity over HTTPS


@pytest.fixture(scope="module")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AzuriteServer, str]]:
    """A second Azurite over HTTPS with ``--oauth basic`` (it accepts bearer tokens only over HTTPS
    and checks their issuer, audience and lifetime, not their signature); yields it and its CA bundle."""
    import base64
    import socket
    import time

    from tests.harness.azurite import find_azurite
    from tests.harness.certs import make_self_signed_cert
    from tests.harness.procs import ManagedProcess, free_port

    binary = find_azurite()
    if binary is None:
        pytest.skip("Azurite is not installed")
    workdir = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = make_self_signed_cert(workdir / "tls")
    keys = {name: base64.b64encode(secrets.token_bytes(64)).decode() for name in ("acct1", "acct2")}
    blob, queue, table = free_port(), free_port(), free_port()
    argv = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(blob), "--queueHost", "127.0.0.1",
            "--queuePort", str(queue), "--tableHost", "127.0.0.1", "--tablePort", str(table),
            "--location", str(workdir / "data"), "--skipApiVersionCheck", "--loose", "--silent",
            "--oauth", "basic", "--cert", str(cert), "--key", str(key)]
    # NODE_EXTRA_CA_CERTS: a server-side copy makes Azurite fetch the source from itself over HTTPS.
    env = {"AZURITE_ACCOUNTS": ";".join(f"{n}:{k}" for n, k in keys.items()), "NODE_EXTRA_CA_CERTS": str(cert)}
    process = ManagedProcess(argv, log_dir=workdir, name=f"azurite-oauth-{blob}", env=env)
    process.start()
    server = AzuriteServer(blob, queue, table, keys, workdir / "data", process)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", blob), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or not process.running():
                server.stop()
                pytest.fail(f"HTTPS Azurite did not start:\n{process.log_tail()}")
            time.sleep(0.1)
    yield server, str(cert)
    server.stop()


def storage_jwt() -> str:
    import jwt

    now = int(datetime.now(UTC).timestamp())
    claims = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/",
              "nbf": now - 60, "iat": now - 60, "exp": now + 3600, "oid": "11111111-2222-3333-4444-555555555555",
              "tid": "ab1f708d-50f6-404c-a006-d71b2ac7a606"}
    return jwt.encode(claims, "not-checked-by-azurite-basic-oauth", algorithm="HS256")


@pytest.mark.parametrize("mode", ["relay", "server"])
def test_managed_identity_token_reaches_https_azurite(azurite_oauth: tuple[AzuriteServer, str],
                                                      monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    from tests.harness.identity import ManagedIdentityStandIn

    server, ca_bundle = azurite_oauth
    identity = ManagedIdentityStandIn(tokens={"https://storage.azure.com": storage_jwt()})
    try:
        for name in CONFLICTING_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in identity.env().items():
            monkeypatch.setenv(name, value)
        container = f"c{secrets.token_hex(6)}"
        base = f"https://127.0.0.1:{server.blob_port}"
        for account in ("acct1", "acct2"):
            BlobServiceClient(f"{base}/{account}", credential={"account_name": account,
                                                              "account_key": server.accounts[account]},
                              connection_verify=ca_bundle).create_container(container)
        data = os.urandom(MiB + 3)
        acct1_key = {"account_name": "acct1", "account_key": server.accounts["acct1"]}
        uploader = BlobServiceClient(f"{base}/acct1", credential=acct1_key, connection_verify=ca_bundle)
        uploader.get_blob_client(container, "mi.tar").upload_blob(data, metadata=META)
        src = BlobLocation.parse(f"{base}/acct1/{container}/mi.tar")
        dst = BlobLocation.parse(f"{base}/acct2/{container}/mi-{mode}.tar")
        auth = ManagedIdentityAuth(connection_verify=ca_bundle)
        result = copy_blob(src, dst, src_auth=auth, dst_auth=auth, mode=mode, block_size=MiB)  # type: ignore[arg-type]
        assert result.size == len(data) and result.metadata == META
        assert "https://storage.azure.com" in identity.resources
        copied = BlobServiceClient(f"{base}/acct2", credential={"account_name": "acct2",
                                                               "account_key": server.accounts["acct2"]},
                                   connection_verify=ca_bundle).get_blob_client(container, f"mi-{mode}.tar")
        assert copied.download_blob().readall() == data
    finally:
        identity.stop()
