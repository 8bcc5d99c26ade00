"""Shared fixtures: real services on loopback (distribution, token server, Azurite) and fakes.

Everything here comes from `tests.harness`, which never imports `ferry`, so tests check Ferry
against independent code. Session-scoped registries are shared: use `unique_repo` for names.

Fixtures:
  registry_factory   function: call ``registry_factory(auth="none"|"htpasswd"|"token")`` for a
                     fresh RegistryServer under tmp_path (stopped at teardown)
  registry, registry_b   session: plain registries, no auth
  auth_registry      session: htpasswd, user "ferry" with a random password
  token_server       session: TokenServer, users "ferry" (all actions) and "reader" (pull only)
  token_registry     session: registry using `token_server`, credentials of "ferry"
  acr_like_registry  session: AcrLikeRegistry (.registry, .token_server, .identity, .aad_token)
  fake_registry      function: empty FakeRegistry
  azurite            session: AzuriteServer with accounts "acct1" and "acct2"; skipped when
                     node_modules/.bin/azurite is missing, unless $CI is set (then it errors)
  content            session: ``sample_set(seed=1)``
  unique_repo        function: a valid repository name unique to the test
  keyvault           session: KeyVaultFixture -- HTTPS Key Vault stand-in (.url, .set_secret,
                     .ca_bundle) and the managed identity stand-in it trusts (.identity)
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.arm import ArmStandIn
from tests.harness.azurite import AzuriteServer, find_azurite, start_azurite
from tests.harness.content import Manifest, sample_set
from tests.harness.fakeregistry import FakeRegistry
from tests.harness.identity import CONFLICTING_ENV_VARS, ManagedIdentityStandIn
from tests.harness.keyvault import KeyVaultStandIn
from tests.harness.registry import AcrLikeRegistry, RegistryServer, start_acr_like, start_registry
from tests.harness.tokenserver import TokenServer


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root directory for session-scoped services (configs, storage, logs)."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """A factory for fresh registries; extra keyword arguments go to `start_registry`."""
    started: list[RegistryServer] = []

    def factory(auth: str = "none", **kwargs: Any) -> RegistryServer:
        server = start_registry(tmp_path / f"registry-{len(started)}", auth, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def registry(services_dir: Path) -> Iterator[RegistryServer]:
    server = start_registry(services_dir / "registry")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_b(services_dir: Path) -> Iterator[RegistryServer]:
    server = start_registry(services_dir / "registry_b")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(services_dir: Path) -> Iterator[RegistryServer]:
    server = start_registry(services_dir / "auth_registry", "htpasswd", username="ferry")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_server(services_dir: Path) -> Iterator[TokenServer]:
    server = TokenServer(
        services_dir / "token_server",
        {"ferry": secrets.token_urlsafe(12), "reader": secrets.token_urlsafe(12)},
        permissions={"reader": {"pull"}},
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(services_dir: Path, token_server: TokenServer) -> Iterator[RegistryServer]:
    server = start_registry(services_dir / "token_registry", "token", token_server, username="ferry")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def acr_like_registry(services_dir: Path) -> Iterator[AcrLikeRegistry]:
    acr = start_acr_like(services_dir / "acr_like")
    yield acr
    acr.stop()


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def azurite(services_dir: Path) -> Iterator[AzuriteServer]:
    binary = find_azurite()
    if binary is None:
        message = (
            "Azurite is not installed (node_modules/.bin/azurite missing): run `npm ci` "
            "in the repository root, or set FERRY_AZURITE_BIN"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message} -- required under CI", pytrace=False)
        pytest.skip(message)
    server = start_azurite(services_dir / "azurite", binary)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def content() -> dict[str, Manifest]:
    """The deterministic sample set (seed 1). Treat it as read-only: it is shared."""
    return sample_set(seed=1)


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """``t/<test-name-slug>-<hash>``: a valid distribution repository name unique to this test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:48].strip("-") or "test"
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    return f"t/{slug}-{digest}"


@pytest.fixture(autouse=True)
def isolated_blob_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own empty blob location cache, so no test sees another's mounts."""
    cache_dir = tmp_path_factory.mktemp("ferry-cache")
    monkeypatch.setenv("FERRY_CACHE_DIR", str(cache_dir))
    return cache_dir


@dataclass
class KeyVaultFixture:
    """The `keyvault` fixture: a Key Vault stand-in (`.url`, `.set_secret`, `.ca_bundle`, `.server`)
    and the managed identity stand-in (`.identity`) whose token the vault accepts."""

    server: KeyVaultStandIn
    identity: ManagedIdentityStandIn

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_bundle(self) -> str:
        return str(self.server.ca_bundle)

    def set_secret(self, name: str, value: str) -> str:
        """Store a new version; returns the secret's URI with that version."""
        return self.server.set_secret(name, value)

    def secret_uri(self, name: str) -> str:
        return self.server.secret_uri(name)


@pytest.fixture(scope="session")
def keyvault(services_dir: Path) -> Iterator[KeyVaultFixture]:
    """Session: a local HTTPS Key Vault stand-in plus the managed identity stand-in it trusts.
    Point DefaultAzureCredential at it with ``keyvault.identity.env()`` (unset CONFLICTING_ENV_VARS)."""
    identity = ManagedIdentityStandIn()
    server = KeyVaultStandIn(services_dir / "keyvault", identity.token)
    yield KeyVaultFixture(server, identity)
    server.stop()
    identity.stop()


@pytest.fixture
def arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStandIn]:
    """ARM and managed identity stand-ins, with the app settings that point Ferry at them."""
    identity = ManagedIdentityStandIn()
    server = ArmStandIn(tmp_path / "arm", identity.token)
    for name in CONFLICTING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in identity.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FERRY_ARM_ENDPOINT", server.url)
    monkeypatch.setenv("FERRY_ARM_CA_BUNDLE", str(server.ca_bundle))
    yield server
    server.stop()
    identity.stop()
