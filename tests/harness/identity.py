"""A stand-in for the Azure App Service managed identity endpoint, on loopback.

azure-identity 1.27 (through msal's ManagedIdentityClient) picks the App Service protocol when
both ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set and ``IDENTITY_SERVER_THUMBPRINT`` is
not. It then sends::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<scope without /.default>
    X-IDENTITY-HEADER: {IDENTITY_HEADER}
    Metadata: true

(plus ``client_id``/``mi_res_id``/``object_id`` for a user-assigned identity) and reads
``access_token`` and ``expires_on`` (epoch seconds; a string is fine) from the JSON answer.

``DefaultAzureCredential()`` reaches it quickly with `env()` set, provided the variables in
`CONFLICTING_ENV_VARS` are unset: EnvironmentCredential and WorkloadIdentityCredential are
skipped as unconfigured without network calls, and ManagedIdentityCredential comes next; with
App Service variables present there is no IMDS probe.
"""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qs, urlsplit

from ._http import LoopbackServer, QuietHandler

__all__ = ["CONFLICTING_ENV_VARS", "ManagedIdentityStandIn"]

#: Unset these before using `env()`: each makes azure-identity pick another credential first.
CONFLICTING_ENV_VARS: tuple[str, ...] = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)

API_VERSION = "2019-08-01"


class ManagedIdentityStandIn:
    """Serves `token` for every resource (or `tokens[resource]` when given); starts on construction.

    Requests without the right ``X-IDENTITY-HEADER`` get 401, a wrong api-version or a missing
    resource 400. `requests` counts all requests; `resources` lists the resources asked for
    by successful requests, in order. Call `stop()` when done.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        tokens: dict[str, str] | None = None,
        expires_in: int = 3600,
        client_id: str = "11111111-2222-3333-4444-555555555555",
    ) -> None:
        self.token = token or f"aad-{secrets.token_urlsafe(24)}"
        self.tokens = dict(tokens or {})
        self.expires_in = expires_in
        self.client_id = client_id
        self.secret = secrets.token_hex(16)
        self.requests = 0
        self.resources: list[str] = []
        #: The ``client_id`` each token request named (None: the default identity).
        self.client_ids: list[str | None] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        self.endpoint = f"{self._server.url}/msi/token"

    def env(self) -> dict[str, str]:
        """Environment variables that point azure-identity at this stand-in."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.secret}

    def token_for(self, resource: str) -> str:
        """The token this stand-in answers for `resource`."""
        return self.tokens.get(resource, self.token)

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        self._server.stop()


class _Handler(QuietHandler):
    server_version = "ferry-harness-identity"

    def do_GET(self) -> None:
        owner: ManagedIdentityStandIn = self.server.owner  # type: ignore[attr-defined]
        with owner._lock:
            owner.requests += 1
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path != "/msi/token":
            self.reply_json(404, {"statusCode": 404, "message": "not found"})
        elif self.headers.get("X-IDENTITY-HEADER") != owner.secret:
            self.reply_json(401, {"statusCode": 401, "message": "missing or wrong X-IDENTITY-HEADER"})
        elif query.get("api-version") != API_VERSION or not query.get("resource"):
            self.reply_json(400, {"statusCode": 400, "message": "need api-version=2019-08-01 and resource"})
        else:
            resource = query["resource"]
            with owner._lock:
                owner.resources.append(resource)
                owner.client_ids.append(query.get("client_id"))
            self.reply_json(
                200,
                {
                    "access_token": owner.token_for(resource),
                    "expires_on": str(int(time.time()) + owner.expires_in),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": owner.client_id,
                },
            )
