"""A local HTTPS stand-in for Azure Key Vault's secret GET, for the real ``SecretClient``.

No Key Vault emulator exists, so this speaks just enough of the real protocol:

* ``GET /secrets/{name}[/{version}]?api-version=...`` without ``Authorization`` answers 401 with
  ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}",
  resource="https://vault.azure.net"`` -- the challenge azure-keyvault-secrets 4.12's
  ``ChallengeAuthPolicy`` parses (it turns ``resource`` into scope ``https://vault.azure.net/.default``
  and the authorization path into the tenant).
* With ``Authorization: Bearer <token>`` equal to `token` (the managed identity stand-in's), 200
  with ``{"value", "id", "attributes"}``; another token gets 401 (with the challenge), an unknown
  secret or version 404 with Key Vault's error shape ``{"error": {"code": "SecretNotFound", ...}}``.

TLS uses a self-signed certificate (SAN IP 127.0.0.1) made with `cryptography`; `ca_bundle` is
its PEM path, for ``connection_verify``. The client must be built with
``verify_challenge_resource=False`` because ``127.0.0.1`` is not under ``vault.azure.net``.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ._http import LoopbackServer, QuietHandler
from .certs import make_self_signed_cert

__all__ = ["KeyVaultStandIn"]


class KeyVaultStandIn:
    """An HTTPS Key Vault secret endpoint on 127.0.0.1; starts on construction, `stop()` when done.

    Counters: `requests` (all), `challenges` (401 answers), `authorized` (200 answers),
    `not_found` (404 answers). `tokens_seen` lists bearer tokens received.
    """

    def __init__(self, directory: Path, token: str, tenant: str = "72f988bf-86f1-41af-91ab-2d7cd011db47") -> None:
        self.token = token
        self.tenant = tenant
        self.ca_bundle, key_path = make_self_signed_cert(Path(directory))
        self._secrets: dict[str, list[tuple[str, str]]] = {}  # name -> [(version, value)], newest last
        self.requests = self.challenges = self.authorized = self.not_found = 0
        self.tokens_seen: list[str] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_path)
        httpd = self._server._httpd
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self.port = self._server.port
        self.url = f"https://127.0.0.1:{self.port}"

    def set_secret(self, name: str, value: str) -> str:
        """Add a new version of secret `name`; returns its URI with version."""
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault(name, []).append((version, value))
        return f"{self.url}/secrets/{name}/{version}"

    def secret_uri(self, name: str) -> str:
        return f"{self.url}/secrets/{name}"

    def lookup(self, name: str, version: str | None) -> tuple[str, str] | None:
        with self._lock:
            versions = self._secrets.get(name) or []
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return next((v for v in versions if v[0] == version), None)

    def stop(self) -> None:
        self._server.stop()


class _Handler(QuietHandler):
    server_version = "ferry-harness-keyvault"

    def _challenge(self, owner: KeyVaultStandIn) -> None:
        with owner._lock:
            owner.challenges += 1
        header = (f'Bearer authorization="https://login.microsoftonline.com/{owner.tenant}", '
                  f'resource="https://vault.azure.net"')
        self.reply_json(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer "
                                                                           "or PoP token."}},
                        headers={"WWW-Authenticate": header})

    def do_GET(self) -> None:
        owner: KeyVaultStandIn = self.server.owner  # type: ignore[attr-defined]
        with owner._lock:
            owner.requests += 1
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        segments = [s for s in url.path.split("/") if s]
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            self._challenge(owner)
            return
        token = auth.removeprefix("Bearer ").strip()
        with owner._lock:
            owner.tokens_seen.append(token)
        if token != owner.token:
            self._challenge(owner)
            return
        if not query.get("api-version"):
            self.reply_json(400, {"error": {"code": "BadParameter", "message": "api-version is missing"}})
            return
        if len(segments) not in (2, 3) or segments[0] != "secrets":
            self.reply_json(404, {"error": {"code": "NotFound", "message": "no such route"}})
            return
        name, version = segments[1], (segments[2] if len(segments) == 3 else None)
        found = owner.lookup(name, version)
        if found is None:
            with owner._lock:
                owner.not_found += 1
            shown = f"{name} with version {version}" if version else name
            self.reply_json(404, {"error": {"code": "SecretNotFound",
                                            "message": f"A secret with (name/id) {shown} was not found in this "
                                                       "key vault."}})
            return
        with owner._lock:
            owner.authorized += 1
        now = int(time.time())
        self.reply_json(200, {
            "value": found[1],
            "id": f"{owner.url}/secrets/{name}/{found[0]}",
            "attributes": {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Recoverable+Purgeable"},
            "tags": {},
        })

