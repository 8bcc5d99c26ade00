"""Azure Resource Manager for container registries: registry resource ids, the management client,
and a registry's login server.

Uses azure-mgmt-containerregistry's ``ContainerRegistryManagementClient`` with
``DefaultAzureCredential``, on the endpoint of the ``FERRY_ARM_ENDPOINT`` setting (default
``https://management.azure.com``; tests point it at a local stand-in, sovereign clouds at theirs),
verified with ``FERRY_ARM_CA_BUNDLE`` when set (stand-ins only).

May be imported by ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ferry.azure.budget import core_options
from ferry.azure.errors import ARM, translate_azure_errors
from ferry.errors import RegistryError, UsageError
from ferry.settings import Settings

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
        match = _REGISTRY_ID_RE.fullmatch(value or "")
        if not match:
            raise UsageError(f"{path}: must be /subscriptions/SUB/resourceGroups/GROUP/providers/"
                             "Microsoft.ContainerRegistry/registries/NAME")
        return cls(match["subscription"], match["group"], match["name"])

    def __str__(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.ContainerRegistry/registries/{self.name}")


def management_client(subscription: str, settings: Settings, credential: Any = None) -> Any:
    """A ``ContainerRegistryManagementClient`` for ``subscription`` on the configured ARM endpoint."""
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    endpoint = settings.arm_endpoint
    kwargs: dict[str, Any] = core_options()
    if settings.arm_ca_bundle:
        kwargs["connection_verify"] = settings.arm_ca_bundle
    scope = endpoint.rstrip("/") + "/.default"  # ARM's audience is its own endpoint, in every cloud
    return ContainerRegistryManagementClient(credential, subscription, base_url=endpoint,
                                             credential_scopes=[scope], **kwargs)


def login_server(resource_id: str, settings: Settings, *, path: str = "source.resourceId",
                 credential: Any = None) -> str:
    """The registry's login server (``NAME.azurecr.io``) for its ARM resource id."""
    rid = RegistryId.parse(resource_id, path)
    with translate_azure_errors(f"{path}: registry {rid}", ARM), \
            management_client(rid.subscription, settings, credential) as client:
        registry = client.registries.get(rid.resource_group, rid.name)
    server = getattr(registry, "login_server", None)
    if not server:
        raise RegistryError(f"{path}: registry {rid} has no login server")
    return str(server)
