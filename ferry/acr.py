"""Azure Resource Manager for container registries: resolve a registry resource id to its login server.

Uses azure-mgmt-containerregistry's ``ContainerRegistryManagementClient`` with
``DefaultAzureCredential``. App settings:

* ``FERRY_ARM_ENDPOINT``: the ARM endpoint (default ``https://management.azure.com``; tests point
  it at a local stand-in; sovereign clouds at theirs).
* ``FERRY_ARM_CA_BUNDLE``: a PEM file to verify that endpoint's TLS certificate (stand-ins only).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ferry.errors import AccessDeniedError, CredentialError, NotFoundError, RegistryError, UsageError

ARM_ENDPOINT_SETTING = "FERRY_ARM_ENDPOINT"
ARM_CA_BUNDLE_SETTING = "FERRY_ARM_CA_BUNDLE"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"

_REGISTRY_ID_RE = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<name>[A-Za-z0-9]{5,50})/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RegistryId:
    subscription: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, value: str, path: str = "source.resourceId") -> RegistryId:
        """``/subscriptions/S/resourceGroups/G/providers/Microsoft.ContainerRegistry/registries/NAME``."""
        match = _REGISTRY_ID_RE.match(value or "")
        if not match:
            raise UsageError(f"{path}: must be /subscriptions/SUB/resourceGroups/GROUP/providers/"
                             "Microsoft.ContainerRegistry/registries/NAME")
        return cls(match["subscription"], match["group"], match["name"])

    def __str__(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.ContainerRegistry/registries/{self.name}")


def management_client(subscription: str, credential: Any = None) -> Any:
    """A ``ContainerRegistryManagementClient`` for ``subscription`` on the configured ARM endpoint."""
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    endpoint = os.environ.get(ARM_ENDPOINT_SETTING, "").strip() or DEFAULT_ARM_ENDPOINT
    kwargs: dict[str, Any] = {}
    bundle = os.environ.get(ARM_CA_BUNDLE_SETTING, "").strip()
    if bundle:
        kwargs["connection_verify"] = bundle
    scope = endpoint.rstrip("/") + "/.default"  # ARM's audience is its own endpoint, in every cloud
    return ContainerRegistryManagementClient(credential, subscription, base_url=endpoint,
                                             credential_scopes=[scope], **kwargs)


def login_server(resource_id: str, *, path: str = "source.resourceId", credential: Any = None) -> str:
    """The registry's login server (``NAME.azurecr.io``) for its ARM resource id."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    rid = RegistryId.parse(resource_id, path)
    try:
        with management_client(rid.subscription, credential) as client:
            registry = client.registries.get(rid.resource_group, rid.name)
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{path}: registry {rid} not found", status=404) from exc
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status == 403:
            raise AccessDeniedError(f"{path}: not allowed to read registry {rid}", status=403) from exc
        raise CredentialError(f"{path}: could not authenticate to Azure Resource Manager for {rid}") from exc
    except HttpResponseError as exc:
        status = exc.status_code
        transient = status is None or status >= 500 or status == 429
        raise RegistryError(f"{path}: Azure Resource Manager answered {status} for {rid}", status=status,
                            transient=transient) from exc
    except ServiceRequestError as exc:
        raise RegistryError(f"{path}: Azure Resource Manager unreachable", transient=True) from exc
    server = getattr(registry, "login_server", None)
    if not server:
        raise RegistryError(f"{path}: registry {rid} has no login server")
    return str(server)
