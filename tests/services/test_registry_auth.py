"""Authentication against real registries: htpasswd, bearer tokens, docker config, helpers, ACR AAD.

Every copy is checked byte for byte with the harness's own client (`tests.harness.content`),
and every failure for its exit code, for a message naming the registry, and for secrets kept out.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.harness import content as c
from tests.harness.faultproxy import FaultProxy
from tests.harness.identity import CONFLICTING_ENV_VARS
from tests.harness.registry import AcrLikeRegistry, RegistryServer
from tests.harness.tokenserver import ACR_NULL_USER, TokenServer
from tests.helpers import CliResult, run_ferry

EXIT_AUTH = 4


@pytest.fixture(autouse=True)
def no_ambient_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $DOCKER_CONFIG at an empty directory so ~/.docker/config.json never leaks in."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def seed(server: RegistryServer, repo: str, manifest: c.Manifest, tag: str = "v1") -> str:
    """Push `manifest` to `server` at repo:tag with the harness client; returns the source ref."""
    c.push(server.url, repo, manifest, tag=tag, auth=server.credentials)
    return f"{server.host}/{repo}:{tag}"


def assert_copied(server: RegistryServer, repo: str, manifest: c.Manifest, tag: str = "v1",
                  auth: tuple[str, str] | None = None) -> None:
    """The target serves exactly `manifest`'s bytes under `tag`, and all of its blobs."""
    auth = auth or server.credentials
    assert c.get_manifest(server.url, repo, tag, auth=auth)[1] == manifest.raw
    for blob in manifest.all_blobs():
        assert c.get_blob(server.url, repo, blob.digest, auth=auth) == blob.data


def assert_auth_failure(result: CliResult, registry_host: str, *secrets: str) -> None:
    output = result.out + result.err
    assert result.code == EXIT_AUTH, output
    assert registry_host in output
    for secret in secrets:
        assert secret not in output


def write_docker_config(directory: Path, config: dict) -> None:
    (directory / "config.json").write_text(json.dumps(config))


def basic_auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


# --- htpasswd (Basic) --------------------------------------------------------------------------


def test_dest_creds_to_htpasswd_registry(registry, auth_registry, content, unique_repo, capsys):
    src = seed(registry, unique_repo, content["docker"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1",
                       "--dest-creds", f"{auth_registry.username}:{auth_registry.password}")
    assert result.code == 0, result.out + result.err
    assert_copied(auth_registry, unique_repo, content["docker"])
    assert auth_registry.password not in result.out + result.err


def test_wrong_dest_password_exits_4_without_leaking_it(registry, auth_registry, content, unique_repo, capsys):
    src = seed(registry, unique_repo, content["docker"])
    wrong = "Wr0ng-Passw0rd-do-not-print"
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1",
                       "--dest-creds", f"{auth_registry.username}:{wrong}")
    assert_auth_failure(result, auth_registry.host, wrong, auth_registry.password)
    assert c.list_tags(auth_registry.url, unique_repo, auth=auth_registry.credentials) == []
    for blob in content["docker"].all_blobs():
        with pytest.raises(c.PushError, match="404"):
            c.get_blob(auth_registry.url, unique_repo, blob.digest, auth=auth_registry.credentials)


def test_no_credentials_for_htpasswd_registry_fails(registry, auth_registry, content, unique_repo, capsys):
    src = seed(registry, unique_repo, content["helm"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1")
    assert result.code != 0
    assert "401" in result.out + result.err and auth_registry.host in result.out + result.err
    assert c.list_tags(auth_registry.url, unique_repo, auth=auth_registry.credentials) == []


def test_source_user_and_password(auth_registry, registry_b, content, unique_repo, capsys):
    src = seed(auth_registry, unique_repo, content["multiarch"])
    result = run_ferry(capsys, "copy", src, f"{registry_b.host}/{unique_repo}:v1",
                       "-u", auth_registry.username, "-p", auth_registry.password, "--no-referrers")
    assert result.code == 0, result.out + result.err
    assert_copied(registry_b, unique_repo, content["multiarch"])


def test_source_src_creds_skopeo_style(auth_registry, registry_b, content, unique_repo, capsys):
    src = seed(auth_registry, unique_repo, content["artifact"])
    result = run_ferry(capsys, "copy", src, f"{registry_b.host}/{unique_repo}:v1",
                       "--src-creds", f"{auth_registry.username}:{auth_registry.password}")
    assert result.code == 0, result.out + result.err
    assert_copied(registry_b, unique_repo, content["artifact"])


def test_wrong_source_password_exits_4(auth_registry, registry_b, content, unique_repo, capsys):
    src = seed(auth_registry, unique_repo, content["artifact"])
    wrong = "n0t-the-s0urce-passw0rd"
    result = run_ferry(capsys, "copy", src, f"{registry_b.host}/{unique_repo}:v1",
                       "-u", auth_registry.username, "-p", wrong)
    assert_auth_failure(result, auth_registry.host, wrong, auth_registry.password)
    assert c.list_tags(registry_b.url, unique_repo) == []


# --- bearer token registry ---------------------------------------------------------------------


def test_token_registry_copy_in_and_out_with_cached_tokens(
    registry, registry_b, token_registry, token_server: TokenServer, content, unique_repo, capsys
):
    creds = f"{token_registry.username}:{token_registry.password}"
    manifest = content["docker_list"]
    src = seed(registry, unique_repo, manifest)
    proxy = FaultProxy(token_registry.host)  # counts the HTTP requests the registry sees
    try:
        token_server.reset_counters()
        result = run_ferry(capsys, "copy", src, f"{proxy.host}/{unique_repo}:v1", "--dest-creds", creds)
        assert result.code == 0, result.out + result.err
        http_in, tokens_in = proxy.count(), token_server.token_requests
        # Tokens are cached per scope (sign-in ping; pull; pull,push), so a few, not one per request.
        # Concurrent first uploads may each fetch the push token: at most one per blob.
        assert 1 <= tokens_in < http_in / 2, (tokens_in, http_in)
        assert tokens_in <= 2 + len(manifest.all_blobs()), (tokens_in, http_in)
        assert token_server.denied_requests == 0
        assert {g.subject for g in token_server.grants} == {token_registry.username}
        granted = {a["name"]: set(a["actions"]) for g in token_server.grants for a in g.access}
        assert granted == {unique_repo: {"pull", "push"}}

        token_server.reset_counters()
        proxy.reset_counters()
        result = run_ferry(capsys, "copy", f"{proxy.host}/{unique_repo}:v1", f"{registry_b.host}/{unique_repo}:v1",
                           "--src-creds", creds)
        assert result.code == 0, result.out + result.err
        assert 1 <= token_server.token_requests < proxy.count()
        # Reading asks for pull only.
        assert {a for g in token_server.grants for entry in g.access for a in entry["actions"]} == {"pull"}
    finally:
        proxy.stop()
    assert_copied(token_registry, unique_repo, manifest)
    assert_copied(registry_b, unique_repo, manifest)


def test_token_registry_pull_only_user_can_copy_out(
    registry_b, token_registry, token_server: TokenServer, content, unique_repo, capsys
):
    src = seed(token_registry, unique_repo, content["helm"])
    reader = token_server.users["reader"]
    result = run_ferry(capsys, "copy", src, f"{registry_b.host}/{unique_repo}:v1", "--src-creds", f"reader:{reader}")
    assert result.code == 0, result.out + result.err
    assert_copied(registry_b, unique_repo, content["helm"])


def test_token_registry_bad_credentials_exit_4(registry, token_registry, token_server, content, unique_repo, capsys):
    src = seed(registry, unique_repo, content["helm"])
    wrong = "bad-t0ken-server-passw0rd"
    token_server.reset_counters()
    result = run_ferry(capsys, "copy", src, f"{token_registry.host}/{unique_repo}:v1",
                       "--dest-creds", f"{token_registry.username}:{wrong}")
    assert_auth_failure(result, token_registry.host, wrong, token_registry.password)
    assert token_server.denied_requests >= 1
    assert token_server.grants == []
    assert c.list_tags(token_registry.url, unique_repo, auth=token_registry.credentials) == []


# --- docker config: auths, credHelpers, credsStore, identity tokens ---------------------------


def test_docker_config_auths(registry, auth_registry, content, unique_repo, no_ambient_docker_config, capsys):
    entry = basic_auth_entry(auth_registry.username, auth_registry.password)
    write_docker_config(no_ambient_docker_config, {"auths": {auth_registry.host: entry}})
    src = seed(registry, unique_repo, content["docker"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1")
    assert result.code == 0, result.out + result.err
    assert_copied(auth_registry, unique_repo, content["docker"])


def test_docker_config_wrong_auth_exits_4(registry, auth_registry, content, unique_repo, no_ambient_docker_config,
                                          capsys):
    wrong = "stale-c0nfig-passw0rd"
    write_docker_config(no_ambient_docker_config,
                        {"auths": {auth_registry.host: basic_auth_entry(auth_registry.username, wrong)}})
    src = seed(registry, unique_repo, content["docker"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1")
    assert_auth_failure(result, auth_registry.host, wrong)


def test_explicit_creds_beat_docker_config(registry, auth_registry, content, unique_repo, no_ambient_docker_config,
                                           capsys):
    write_docker_config(no_ambient_docker_config,
                        {"auths": {auth_registry.host: basic_auth_entry(auth_registry.username, "stale")}})
    src = seed(registry, unique_repo, content["helm"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1",
                       "--dest-creds", f"{auth_registry.username}:{auth_registry.password}")
    assert result.code == 0, result.out + result.err


HELPER_SOURCE = """#!{python}
# A docker credential helper speaking the real protocol: `get` reads the server URL on stdin.
import json
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
action = sys.argv[1] if len(sys.argv) > 1 else ""
server = sys.stdin.read().strip()
with open(here / "calls.log", "a") as log:
    log.write(f"{{action}} {{server}}\\n")
store = json.loads((here / "store.json").read_text())
if action != "get" or server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
username, secret = store[server]
print(json.dumps({{"ServerURL": server, "Username": username, "Secret": secret}}))
"""


@pytest.fixture
def cred_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install ``docker-credential-ferrytest`` in a directory put first on PATH; returns the directory.

    Write ``store.json`` there ({server: [username, secret]}); calls are logged to ``calls.log``.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-ferrytest"
    helper.write_text(HELPER_SOURCE.format(python=sys.executable))
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (bindir / "store.json").write_text("{}")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bindir


def test_docker_config_cred_helper(registry, auth_registry, content, unique_repo, no_ambient_docker_config,
                                   cred_helper, capsys):
    (cred_helper / "store.json").write_text(
        json.dumps({auth_registry.host: [auth_registry.username, auth_registry.password]}))
    write_docker_config(no_ambient_docker_config, {"credHelpers": {auth_registry.host: "ferrytest"}})
    src = seed(registry, unique_repo, content["artifact"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1")
    assert result.code == 0, result.out + result.err
    assert_copied(auth_registry, unique_repo, content["artifact"])
    calls = (cred_helper / "calls.log").read_text().splitlines()
    assert calls and set(calls) == {f"get {auth_registry.host}"}


def test_docker_config_creds_store(registry, auth_registry, content, unique_repo, no_ambient_docker_config,
                                   cred_helper, capsys):
    (cred_helper / "store.json").write_text(
        json.dumps({f"https://{auth_registry.host}": [auth_registry.username, auth_registry.password]}))
    write_docker_config(no_ambient_docker_config, {"credsStore": "ferrytest"})
    src = seed(registry, unique_repo, content["helm"])
    result = run_ferry(capsys, "copy", src, f"{auth_registry.host}/{unique_repo}:v1")
    assert result.code == 0, result.out + result.err
    assert_copied(auth_registry, unique_repo, content["helm"])
    assert f"get https://{auth_registry.host}" in (cred_helper / "calls.log").read_text().splitlines()


def test_docker_config_identity_token(registry, token_registry, token_server: TokenServer, content, unique_repo,
                                      no_ambient_docker_config, capsys):
    refresh = token_server.issue_refresh_token(token_registry.username)
    write_docker_config(no_ambient_docker_config, {"auths": {token_registry.host: {"identitytoken": refresh}}})
    src = seed(registry, unique_repo, content["docker"])
    token_server.reset_counters()
    result = run_ferry(capsys, "copy", src, f"{token_registry.host}/{unique_repo}:v1")
    assert result.code == 0, result.out + result.err
    assert_copied(token_registry, unique_repo, content["docker"])
    # The refresh-token grant names the user the token was issued to.
    assert token_server.grants and {g.subject for g in token_server.grants} == {token_registry.username}
    assert refresh not in result.out + result.err


def test_refresh_token_as_password_with_null_user(registry, token_registry, token_server: TokenServer, content,
                                                  unique_repo, capsys):
    refresh = token_server.issue_refresh_token(token_registry.username)
    src = seed(registry, unique_repo, content["helm"])
    result = run_ferry(capsys, "copy", src, f"{token_registry.host}/{unique_repo}:v1",
                       "--dest-creds", f"{ACR_NULL_USER}:{refresh}")
    assert result.code == 0, result.out + result.err
    assert_copied(token_registry, unique_repo, content["helm"])


def test_unknown_identity_token_exits_4(registry, token_registry, content, unique_repo, no_ambient_docker_config,
                                        capsys):
    bogus = "never-issued-refresh-token"
    write_docker_config(no_ambient_docker_config, {"auths": {token_registry.host: {"identitytoken": bogus}}})
    src = seed(registry, unique_repo, content["helm"])
    result = run_ferry(capsys, "copy", src, f"{token_registry.host}/{unique_repo}:v1")
    assert_auth_failure(result, token_registry.host, bogus)


# --- ACR: Azure AD token exchange --------------------------------------------------------------


@pytest.fixture
def managed_identity_env(acr_like_registry: AcrLikeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make DefaultAzureCredential reach the managed identity stand-in (and nothing else)."""
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in acr_like_registry.identity.env().items():
        monkeypatch.setenv(name, value)


def test_acr_aad_token_as_password_without_user(registry, acr_like_registry: AcrLikeRegistry, content, unique_repo,
                                                capsys):
    acr = acr_like_registry
    src = seed(registry, unique_repo, content["docker"])
    acr.token_server.reset_counters()
    result = run_ferry(capsys, "copy", src, f"{acr.registry.host}/{unique_repo}:v1",
                       "--dest-creds", f":{acr.aad_token}")
    assert result.code == 0, result.out + result.err
    assert acr.token_server.exchange_requests == 1  # exchanged once, the refresh token reused
    assert acr.aad_token not in result.out + result.err
    # Every token Ferry got was issued to the AAD identity, through the exchanged refresh token.
    assert {g.subject for g in acr.token_server.grants} == {f"aad:{acr.aad_token}"}
    assert_copied(acr.registry, unique_repo, content["docker"])


def test_acr_source_with_aad_token(acr_like_registry: AcrLikeRegistry, registry_b, content, unique_repo, capsys):
    acr = acr_like_registry
    src = seed(acr.registry, unique_repo, content["artifact"])
    result = run_ferry(capsys, "copy", src, f"{registry_b.host}/{unique_repo}:v1", "--src-creds", f":{acr.aad_token}")
    assert result.code == 0, result.out + result.err
    assert_copied(registry_b, unique_repo, content["artifact"])


def test_acr_dest_azure_ad_uses_managed_identity(registry, acr_like_registry: AcrLikeRegistry, content, unique_repo,
                                                 managed_identity_env, capsys):
    acr = acr_like_registry
    src = seed(registry, unique_repo, content["helm"])
    identity_before = acr.identity.requests
    exchanges_before = acr.token_server.exchange_requests
    result = run_ferry(capsys, "copy", src, f"{acr.registry.host}/{unique_repo}:v1", "--dest-azure-ad")
    assert result.code == 0, result.out + result.err
    assert acr.identity.requests > identity_before
    assert acr.identity.resources and acr.identity.resources[-1].rstrip("/") == "https://management.azure.com"
    assert acr.token_server.exchange_requests == exchanges_before + 1
    assert_copied(acr.registry, unique_repo, content["helm"])


def test_acr_wrong_aad_token_exits_4(registry, acr_like_registry: AcrLikeRegistry, content, unique_repo, capsys):
    acr = acr_like_registry
    src = seed(registry, unique_repo, content["helm"])
    bogus = "aad-token-that-was-never-issued"
    denied_before = acr.token_server.denied_requests
    result = run_ferry(capsys, "copy", src, f"{acr.registry.host}/{unique_repo}:v1", "--dest-creds", f":{bogus}")
    assert_auth_failure(result, acr.registry.host, bogus)
    assert acr.token_server.denied_requests > denied_before
    assert c.list_tags(acr.registry.url, unique_repo, auth=acr.registry.credentials) == []
