"""Azure Resource Manager for container registries: resolve a registry resource id to its login
server, and hand an importImage to the target ACR (:func:`import_image`).

Uses azure-mgmt-containerregistry's ``ContainerRegistryManagementClient`` with
``DefaultAzureCredential``. App settings:

* ``FERRY_ARM_ENDPOINT``: the ARM endpoint (default ``https://management.azure.com``; tests point
  it at a local stand-in; sovereign clouds at theirs).
* ``FERRY_ARM_CA_BUNDLE``: a PEM file to verify that endpoint's TLS certificate (stand-ins only).
* ``FERRY_TARGET_ACR_RESOURCE_ID`` and ``FERRY_ACR_IMPORT_HANDOFF``: when the latter is ``true``,
  importImage is handed to that ACR's own importImage (:func:`handoff_target`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.errors import (
    AccessDeniedError,
    ConflictError,
    CredentialError,
    FerryError,
    NotFoundError,
    RegistryError,
    UsageError,
)
from ferry.redact import redact

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


# --------------------------------------------------------------------------- importImage handoff

TARGET_ACR_SETTING = "FERRY_TARGET_ACR_RESOURCE_ID"
HANDOFF_SETTING = "FERRY_ACR_IMPORT_HANDOFF"
#: Seconds between polls of ACR's import operation when ARM sends no Retry-After (the SDK's default is 30).
IMPORT_POLL_SECONDS = 5


def handoff_target(settings: Mapping[str, str] | None = None) -> str | None:
    """The target ACR's resource id when importImage is handed to ACR (``FERRY_ACR_IMPORT_HANDOFF``
    is ``true`` and ``FERRY_TARGET_ACR_RESOURCE_ID`` is set), else None (Ferry copies itself).
    A handoff asked for without a valid resource id is a configuration error (FerryError)."""
    env = os.environ if settings is None else settings
    if env.get(HANDOFF_SETTING, "").strip().lower() != "true":
        return None
    value = env.get(TARGET_ACR_SETTING, "").strip()
    if not value:
        raise FerryError(f"app setting {HANDOFF_SETTING} is true but {TARGET_ACR_SETTING} "
                         "(the target ACR's resource id) is not set")
    try:
        return str(RegistryId.parse(value, f"app setting {TARGET_ACR_SETTING}"))
    except UsageError as exc:  # not the caller's fault: the app is misconfigured
        raise FerryError(str(exc)) from exc


def _import_parameters(params: Mapping[str, Any], credentials: Mapping[str, Any] | None) -> Any:
    from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource, ImportSourceCredentials

    source = params.get("source") or {}
    creds = None
    if credentials:
        creds = ImportSourceCredentials(username=credentials.get("username") or None,
                                        password=str(credentials["password"]))
    if source.get("resourceId"):
        import_source = ImportSource(resource_id=str(source["resourceId"]), source_image=str(source["image"]),
                                     credentials=creds)
    else:
        import_source = ImportSource(registry_uri=str(source["registry"]), source_image=str(source["image"]),
                                     credentials=creds)
    return ImportImageParameters(source=import_source, target_tags=list(params.get("targetTags") or []),
                                 untagged_target_repositories=list(params.get("untaggedTargetRepositories") or []),
                                 mode=str(params.get("mode") or "NoForce"))


def _acr_reason(exc: Any) -> str:
    """``CODE: message`` from ARM's error body (initial answer or failed operation), else the reason."""
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if code or message:
        return ": ".join(str(part) for part in (code, message) if part)
    return str(getattr(exc, "reason", None) or type(exc).__name__)


def import_image(target_resource_id: str, params: Mapping[str, Any], credentials: Mapping[str, Any] | None,
                 *, credential: Any = None) -> list[str]:
    """Hand an importImage to the target ACR (``registries.begin_import_image``, an ARM long-running
    operation) and wait for it. ``params`` is the ``image_import`` orchestration input (``source
    {registry, image, resourceId?}``, ``targetTags``, ``untaggedTargetRepositories``, ``mode``);
    ``credentials`` the claim's ``{username, password}`` or None. Returns what was imported: the
    target tags, then the untagged repositories.

    Errors: 5xx, 429 and connection failures are transient RegistryErrors; ACR's refusals (a failed
    operation, 400, 409, 404, 401/403) are permanent, with ACR's code and message and never the password.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.core.polling.base_polling import OperationFailed

    rid = RegistryId.parse(target_resource_id, f"app setting {TARGET_ACR_SETTING}")
    secret = str((credentials or {}).get("password") or "")

    def clean(text: str) -> str:
        return redact(text.replace(secret, "REDACTED") if secret else text)

    what = f"ACR importImage into {rid.name}"
    body = _import_parameters(params, credentials)
    try:
        with management_client(rid.subscription, credential) as client:
            poller = client.registries.begin_import_image(rid.resource_group, rid.name, body,
                                                          polling_interval=IMPORT_POLL_SECONDS)
            poller.result()
    except HttpResponseError as exc:
        status = exc.status_code
        reason = clean(_acr_reason(exc))
        if isinstance(exc.__cause__, OperationFailed) or isinstance(getattr(exc, "inner_exception", None),
                                                                    OperationFailed):
            raise RegistryError(f"{what} failed: {reason}", transient=False) from None
        if isinstance(exc, ResourceNotFoundError):
            raise NotFoundError(f"{what}: {reason}", status=404) from None
        if isinstance(exc, ResourceExistsError):
            raise ConflictError(f"{what}: {reason}") from None
        if status == 403:
            raise AccessDeniedError(f"{what}: not allowed: {reason}", status=403) from None
        if isinstance(exc, ClientAuthenticationError) or status == 401:
            raise CredentialError(f"{what}: could not authenticate to Azure Resource Manager: {reason}") from None
        transient = status is None or status >= 500 or status == 429
        raise RegistryError(f"{what}: Azure Resource Manager answered {status}: {reason}", status=status,
                            transient=transient) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise RegistryError(f"{what}: Azure Resource Manager unreachable: {clean(str(exc))}",
                            transient=True) from None
    return [*body.target_tags, *body.untagged_target_repositories]
