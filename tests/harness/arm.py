"""A local HTTPS stand-in for Azure Resource Manager's container registry GET, for the real
``ContainerRegistryManagementClient``.

No ARM emulator exists, so this answers just what Ferry asks:

* ``GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}
  ?api-version=...`` with ``Authorization: Bearer <token>`` equal to `token` (the managed identity
  stand-in's): 200 with a registry resource whose ``properties.loginServer`` is the one added with
  `add_registry`; an unknown registry 404 with ARM's ``{"error": {"code": "ResourceNotFound", ...}}``.
* Without ``api-version``: 400. Without the right bearer token: 401 (``AuthenticationFailed``).

TLS (azure-core refuses bearer tokens over plain HTTP) uses a self-signed certificate for
127.0.0.1; `ca_bundle` is its PEM path, for ``connection_verify``.
"""

from __future__ import annotations

import re
import ssl
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ._http import LoopbackServer, QuietHandler
from .keyvault import make_self_signed_cert

__all__ = ["ArmStandIn"]

_REGISTRY_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


class ArmStandIn:
    """HTTPS on 127.0.0.1; starts on construction, `stop()` when done. `requests` lists the paths
    asked for (with their api-version), `tokens_seen` the bearer tokens received."""

    def __init__(self, directory: Path, token: str) -> None:
        self.token = token
        self.ca_bundle, key_path = make_self_signed_cert(Path(directory))
        self._registries: dict[tuple[str, str, str], str] = {}
        self.requests: list[str] = []
        self.tokens_seen: list[str] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_path)
        self._server._httpd.socket = context.wrap_socket(self._server._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.port}"

    def add_registry(self, subscription: str, resource_group: str, name: str, login_server: str) -> str:
        """Serve registry `name`; returns its resource id."""
        with self._lock:
            self._registries[(subscription.lower(), resource_group.lower(), name.lower())] = login_server
        return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
                f"/providers/Microsoft.ContainerRegistry/registries/{name}")

    def stop(self) -> None:
        self._server.stop()


class _Handler(QuietHandler):
    server_version = "ferry-harness-arm"

    def do_GET(self) -> None:
        owner: ArmStandIn = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.headers.get("Authorization", "")
        with owner._lock:
            owner.requests.append(f"{url.path}?api-version={query.get('api-version')}")
            if auth.startswith("Bearer "):
                owner.tokens_seen.append(auth[7:])
        if auth != f"Bearer {owner.token}":
            self.reply_json(401, {"error": {"code": "AuthenticationFailed", "message": "missing or wrong token"}})
            return
        if not query.get("api-version"):
            self.reply_json(400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version"}})
            return
        match = _REGISTRY_PATH.match(url.path)
        key = (match["sub"].lower(), match["rg"].lower(), match["name"].lower()) if match else None
        with owner._lock:
            server = owner._registries.get(key) if key else None
        if match is None or server is None:
            self.reply_json(404, {"error": {"code": "ResourceNotFound",
                                            "message": f"The Resource '{url.path}' was not found."}})
            return
        self.reply_json(200, {
            "id": url.path,
            "name": match["name"],
            "type": "Microsoft.ContainerRegistry/registries",
            "location": "westeurope",
            "sku": {"name": "Premium", "tier": "Premium"},
            "properties": {"loginServer": server, "provisioningState": "Succeeded", "adminUserEnabled": False},
        })
