"""Real CNCF distribution registries (Debian ``docker-registry`` 2.8.2) on loopback.

`start_registry` writes a config under `workdir` (storage in ``workdir/storage``), starts
``docker-registry serve``, waits until ``/v2/`` answers (401 counts) and returns a
`RegistryServer`. The config is JSON, which distribution's YAML parser reads as YAML.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import bcrypt

from .identity import ManagedIdentityStandIn
from .procs import ManagedProcess, free_port
from .tokenserver import TokenServer

__all__ = ["REGISTRY_BINARY", "AcrLikeRegistry", "AuthMode", "RegistryServer", "start_acr_like", "start_registry"]

REGISTRY_BINARY = "docker-registry"
AuthMode = Literal["none", "htpasswd", "token"]


@dataclass
class RegistryServer:
    """A running registry. `host` is ``127.0.0.1:PORT``, `url` ``http://127.0.0.1:PORT``.

    `username`/`password` are the credentials that work (None for auth "none").
    For auth "token", `token_server` is the server named in the registry's challenge; if
    `start_registry` created it, `stop()` stops it too.
    """

    host: str
    url: str
    port: int
    auth: AuthMode
    root: Path
    config_path: Path
    process: ManagedProcess
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    owns_token_server: bool = False

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) or None, the form `content.push(auth=...)` takes."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password

    def stop(self) -> None:
        """Stop the registry process (and a token server we own). Idempotent."""
        self.process.stop()
        if self.owns_token_server and self.token_server is not None:
            self.token_server.stop()

    def restart(self) -> None:
        """Stop and start the same registry on the same port and storage; waits until ready."""
        self.process.restart()


def _htpasswd_line(username: str, password: str) -> str:
    # bcrypt writes $2b$; Go's x/crypto/bcrypt (used by distribution) accepts 2a/2b/2y alike.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}\n"


def start_registry(
    workdir: Path,
    auth: AuthMode = "none",
    token_server: TokenServer | None = None,
    *,
    username: str = "ferry",
    password: str | None = None,
    port: int | None = None,
    realm: str | None = None,
    ready_timeout: float = 20.0,
    allow_foreign_urls: list[str] | None = None,
) -> RegistryServer:
    """Start a registry with storage and config under `workdir`.

    auth "htpasswd": one user `username` with `password` (random if None).
    auth "token": uses `token_server` (its service, issuer, cert bundle and realm); if None, a
    TokenServer with users ``{username: password}`` is created and owned by the result. The
    returned credentials are `username`/`password` if that user exists there, else the first
    user of the token server, else None.
    `realm` overrides the token realm (e.g. ``token_server.acr_realm`` for ACR's /oauth2/token).
    `port` lets a caller pick the port in advance (e.g. to make it the token service name).
    `allow_foreign_urls`: regular expressions written to ``validation.manifests.urls.allow``.
    Distribution (2.7+) validates manifests by default and, with no allow/deny list, rejects
    every manifest whose foreign (non-distributable) layers carry URLs; a URL must match one of
    these patterns (and be http/https without a fragment) to be accepted.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if allow_foreign_urls:
        config["validation"] = {"manifests": {"urls": {"allow": list(allow_foreign_urls)}}}
    owns = False
    user: str | None = None
    if auth == "htpasswd":
        password = password or secrets.token_urlsafe(12)
        user = username
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(_htpasswd_line(username, password))
        config["auth"] = {"htpasswd": {"realm": "ferry-test-registry", "path": str(htpasswd)}}
    elif auth == "token":
        if token_server is None:
            password = password or secrets.token_urlsafe(12)
            token_server = TokenServer(workdir / "token", {username: password})
            owns = True
        if username in token_server.users:
            user, password = username, token_server.users[username]
        elif token_server.users:
            user, password = next(iter(token_server.users.items()))
        else:
            password = None
        config["auth"] = {
            "token": {
                "realm": realm or token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_bundle),
            }
        }
    elif auth == "none":
        password = None
    else:
        raise ValueError(f"unknown auth mode {auth!r}")
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=2))
    process = ManagedProcess(
        [REGISTRY_BINARY, "serve", str(config_path)], log_dir=workdir, name=f"registry-{port}"
    )
    server = RegistryServer(
        host=f"127.0.0.1:{port}",
        url=f"http://127.0.0.1:{port}",
        port=port,
        auth=auth,
        root=root,
        config_path=config_path,
        process=process,
        username=user,
        password=password,
        token_server=token_server if auth == "token" else None,
        owns_token_server=owns,
    )
    process.start()
    try:
        process.wait_http(f"{server.url}/v2/", ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class AcrLikeRegistry:
    """A token-auth registry that behaves like ACR for auth: realm ``/oauth2/token``, service =
    the registry host, AAD exchange at ``token_server.exchange_url`` accepting `aad_token`, which
    the managed identity stand-in `identity` hands out (point azure-identity at it with
    ``identity.env()``). `registry.username`/`password` are an admin user (like ACR's admin).
    """

    registry: RegistryServer
    token_server: TokenServer
    identity: ManagedIdentityStandIn

    @property
    def aad_token(self) -> str:
        return self.identity.token

    def stop(self) -> None:
        self.registry.stop()
        self.token_server.stop()
        self.identity.stop()


def start_acr_like(workdir: Path, *, admin_user: str = "ferry-admin") -> AcrLikeRegistry:
    """Start a managed identity stand-in, an ACR-style token server and a registry using it."""
    workdir = Path(workdir)
    identity = ManagedIdentityStandIn()
    port = free_port()
    token_server = TokenServer(
        workdir / "token",
        {admin_user: secrets.token_urlsafe(12)},
        service=f"127.0.0.1:{port}",
        issuer="ferry-test-acr",
        accepted_aad_tokens={identity.token},
    )
    try:
        registry = start_registry(
            workdir / "registry", "token", token_server, username=admin_user, port=port,
            realm=token_server.acr_realm,
        )
    except BaseException:
        token_server.stop()
        identity.stop()
        raise
    return AcrLikeRegistry(registry, token_server, identity)
