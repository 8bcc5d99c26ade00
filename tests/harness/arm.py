"""A local HTTPS stand-in for Azure Resource Manager's container registry GET, for the real
``ContainerRegistryManagementClient``.

No ARM emulator exists, so this answers just what Ferry asks:

* ``GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}
  ?api-version=...`` with ``Authorization: Bearer <token>`` equal to `token` (the managed identity
  stand-in's): 200 with a registry resource whose ``properties.loginServer`` is the one added with
  `add_registry`; an unknown registry 404 with ARM's ``{"error": {"code": "ResourceNotFound", ...}}``.
* ``POST .../registries/{name}/importImage?api-version=...`` (ARM's asynchronous pattern, as
  ``begin_import_image``'s ARMPolling follows it): the JSON body is recorded in `imports`; a body
  without ``source.sourceImage`` or with neither/both of ``registryUri``/``resourceId`` gets 400
  (``InvalidParameters``); otherwise 202 with ``Azure-AsyncOperation`` (``.../operationStatuses/ID``)
  and ``Location`` (``.../operationResults/ID``). The status answers ``InProgress`` `import_polls`
  times (``Retry-After: 1``), then ``Succeeded``, or ``Failed`` with `import_error` (ARM's
  ``{"code", "message"}``) when a test sets it. The result URL answers 202 until done, then 204.
* Without ``api-version``: 400. Without the right bearer token: 401 (``AuthenticationFailed``).

TLS (azure-core refuses bearer tokens over plain HTTP) uses a self-signed certificate for
127.0.0.1; `ca_bundle` is its PEM path, for ``connection_verify``.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import LoopbackServer, QuietHandler
from .certs import make_self_signed_cert

__all__ = ["ArmStandIn"]

_REGISTRY_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_IMPORT_PATH = re.compile(r"^(?P<registry>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                          r"Microsoft\.ContainerRegistry/registries/[^/]+)/importImage$", re.IGNORECASE)
_OPERATION_PATH = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.ContainerRegistry/locations/[^/]+"
                             r"/(?P<kind>operationStatuses|operationResults)/(?P<id>[^/]+)$", re.IGNORECASE)


class ArmStandIn:
    """HTTPS on 127.0.0.1; starts on construction, `stop()` when done. `requests` lists the paths
    asked for (with their api-version, methods other than GET first), `tokens_seen` the bearer
    tokens received, `imports` the importImage requests (``{"registry", "api-version", "body"}``).
    Set `import_error` (``{"code", "message"}``) to make import operations fail, `import_polls` for
    how many status polls answer InProgress first."""

    def __init__(self, directory: Path, token: str) -> None:
        self.token = token
        self.ca_bundle, key_path = make_self_signed_cert(Path(directory))
        self._registries: dict[tuple[str, str, str], str] = {}
        self.requests: list[str] = []
        self.tokens_seen: list[str] = []
        self.imports: list[dict[str, Any]] = []
        self.import_error: dict[str, str] | None = None
        self.import_polls = 1
        self._operations: dict[str, dict[str, Any]] = {}  # id -> {"polls_left", "error"}
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

    def _check(self, method: str) -> tuple[ArmStandIn, Any, dict[str, str]] | None:
        """Record the request; answer 401/400 (and return None) without the token or api-version."""
        owner: ArmStandIn = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.headers.get("Authorization", "")
        with owner._lock:
            prefix = "" if method == "GET" else f"{method} "
            owner.requests.append(f"{prefix}{url.path}?api-version={query.get('api-version')}")
            if auth.startswith("Bearer "):
                owner.tokens_seen.append(auth[7:])
        if auth != f"Bearer {owner.token}":
            self.reply_json(401, {"error": {"code": "AuthenticationFailed", "message": "missing or wrong token"}})
            return None
        if not query.get("api-version"):
            self.reply_json(400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version"}})
            return None
        return owner, url, query

    def _registry_known(self, owner: ArmStandIn, path: str) -> bool:
        match = _REGISTRY_PATH.match(path)
        with owner._lock:
            return bool(match) and (match["sub"].lower(), match["rg"].lower(), match["name"].lower()) \
                in owner._registries

    def do_POST(self) -> None:
        body = self.read_body()
        checked = self._check("POST")
        if checked is None:
            return
        owner, url, query = checked
        match = _IMPORT_PATH.match(url.path)
        if match is None or not self._registry_known(owner, match["registry"]):
            self.reply_json(404, {"error": {"code": "ResourceNotFound",
                                            "message": f"The Resource '{url.path}' was not found."}})
            return
        try:
            params = json.loads(body or b"null")
        except ValueError:
            params = None
        with owner._lock:
            owner.imports.append({"registry": match["registry"], "api-version": query["api-version"],
                                  "body": params})
        source = params.get("source") if isinstance(params, dict) else None
        if not isinstance(source, dict) or not source.get("sourceImage") \
                or bool(source.get("registryUri")) == bool(source.get("resourceId")):
            self.reply_json(400, {"error": {"code": "InvalidParameters",
                                            "message": "source: sourceImage and one of registryUri or resourceId "
                                                       "are required"}})
            return
        operation = uuid.uuid4().hex
        with owner._lock:
            owner._operations[operation] = {"polls_left": owner.import_polls, "error": owner.import_error}
        base = f"{owner.url}/subscriptions/{url.path.split('/')[2]}/providers/Microsoft.ContainerRegistry" \
               f"/locations/westeurope"
        version = query["api-version"]
        self.reply(202, headers={
            "Azure-AsyncOperation": f"{base}/operationStatuses/{operation}?api-version={version}",
            "Location": f"{base}/operationResults/{operation}?api-version={version}",
            "Retry-After": "1"})

    def _operation(self, owner: ArmStandIn, kind: str, operation_id: str) -> None:
        with owner._lock:
            operation = owner._operations.get(operation_id)
            if operation is not None and kind.lower() == "operationstatuses" and operation["polls_left"] > 0:
                operation["polls_left"] -= 1
                running = True
            else:
                running = operation is not None and operation["polls_left"] > 0
        if operation is None:
            self.reply_json(404, {"error": {"code": "ResourceNotFound", "message": "unknown operation"}})
        elif kind.lower() == "operationresults" and running:
            self.reply(202, headers={"Retry-After": "1"})
        elif kind.lower() == "operationresults":
            self.reply(204, content_type=None)
        elif running:
            self.reply_json(200, {"name": operation_id, "status": "InProgress"}, headers={"Retry-After": "1"})
        elif operation["error"]:
            self.reply_json(200, {"name": operation_id, "status": "Failed", "error": operation["error"]})
        else:
            self.reply_json(200, {"name": operation_id, "status": "Succeeded"})

    def do_GET(self) -> None:
        checked = self._check("GET")
        if checked is None:
            return
        owner, url, _ = checked
        op = _OPERATION_PATH.match(url.path)
        if op is not None:
            self._operation(owner, op["kind"], op["id"])
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
