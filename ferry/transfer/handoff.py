"""The importImage handoff: when the target is an ACR, its own importImage can do the copy.

With the app settings ``FERRY_ACR_IMPORT_HANDOFF=true`` and ``FERRY_TARGET_ACR_RESOURCE_ID``, an
importImage is handed to that registry (``registries.begin_import_image``, an ARM long-running
operation) instead of being copied by Ferry. :class:`Handoff` is what the orchestration carries
(credentials stay in a claim); :func:`import_image` runs it.

May be imported by ``ferry/transfer`` and the faces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.azure.arm import RegistryId, management_client
from ferry.azure.errors import ARM, translate_azure_errors
from ferry.errors import FerryError, RegistryError, UsageError
from ferry.redact import redact
from ferry.settings import ACR_IMPORT_HANDOFF, TARGET_ACR_RESOURCE_ID, Settings

#: Seconds between polls of ACR's import operation when ARM sends no Retry-After (the SDK's default is 30).
IMPORT_POLL_SECONDS = 5


@dataclass(frozen=True)
class Handoff:
    """One importImage for the target ACR: the source as the caller gave it (a login server or a
    resource id), the claim naming its credentials, and the targets."""

    target_resource_id: str
    source_image: str
    source_registry: str | None = None
    source_resource_id: str | None = None
    credentials_ref: str | None = None
    target_tags: tuple[str, ...] = ()
    untagged_target_repositories: tuple[str, ...] = ()
    mode: str = "NoForce"

    @property
    def source_label(self) -> str:
        return f"{self.source_registry or self.source_resource_id}/{self.source_image}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Handoff:
        return cls(**{**data, "target_tags": tuple(data.get("target_tags") or ()),
                      "untagged_target_repositories": tuple(data.get("untagged_target_repositories") or ())})


def handoff_target(settings: Settings) -> str | None:
    """The target ACR's resource id when importImage is handed to ACR, else None (Ferry copies itself).
    A handoff asked for without a valid resource id is a configuration error (FerryError)."""
    if not settings.acr_handoff:
        return None
    value = settings.target_acr_resource_id
    if not value:
        raise FerryError(f"app setting {ACR_IMPORT_HANDOFF} is true but {TARGET_ACR_RESOURCE_ID} "
                         "(the target ACR's resource id) is not set")
    try:
        return str(RegistryId.parse(value, f"app setting {TARGET_ACR_RESOURCE_ID}"))
    except UsageError as exc:  # not the caller's fault: the app is misconfigured
        raise FerryError(str(exc)) from exc


def _import_parameters(handoff: Handoff, credentials: Mapping[str, Any] | None) -> Any:
    from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource, ImportSourceCredentials

    creds = None
    if credentials:
        creds = ImportSourceCredentials(username=credentials.get("username") or None,
                                        password=str(credentials["password"]))
    if handoff.source_resource_id:
        source = ImportSource(resource_id=handoff.source_resource_id, source_image=handoff.source_image,
                              credentials=creds)
    else:
        source = ImportSource(registry_uri=handoff.source_registry, source_image=handoff.source_image,
                              credentials=creds)
    return ImportImageParameters(source=source, target_tags=list(handoff.target_tags),
                                 untagged_target_repositories=list(handoff.untagged_target_repositories),
                                 mode=handoff.mode)


def _acr_reason(exc: BaseException) -> str:
    """``CODE: message`` from ARM's error body (initial answer or failed operation), else the reason."""
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if code or message:
        return ": ".join(str(part) for part in (code, message) if part)
    return str(getattr(exc, "reason", None) or type(exc).__name__)


def import_image(handoff: Handoff, credentials: Mapping[str, Any] | None, settings: Settings,
                 *, credential: Any = None) -> list[str]:
    """Hand the import to the target ACR and wait for it; returns what was imported (the target
    tags, then the untagged repositories).

    5xx, 429 and connection failures are transient; ACR's refusals (a failed operation, 400, 409,
    404, 401/403) are permanent, with ACR's code and message and never the password.
    """
    from azure.core.exceptions import HttpResponseError
    from azure.core.polling.base_polling import OperationFailed

    rid = RegistryId.parse(handoff.target_resource_id, f"app setting {TARGET_ACR_RESOURCE_ID}")
    secret = str((credentials or {}).get("password") or "")

    def reason(exc: BaseException) -> str:
        text = _acr_reason(exc)
        return redact(text.replace(secret, "REDACTED") if secret else text)

    what = f"ACR importImage into {rid.name}"
    body = _import_parameters(handoff, credentials)
    try:
        with translate_azure_errors(what, ARM, reason=reason), \
                management_client(rid.subscription, settings, credential) as client:
            client.registries.begin_import_image(rid.resource_group, rid.name, body,
                                                 polling_interval=IMPORT_POLL_SECONDS).result()
    except RegistryError as exc:
        cause = exc.__cause__
        if isinstance(cause, HttpResponseError) and (
                isinstance(cause.__cause__, OperationFailed)
                or isinstance(getattr(cause, "inner_exception", None), OperationFailed)):
            raise RegistryError(f"{what} failed: {reason(cause)}", transient=False) from None
        raise
    return [*body.target_tags, *body.untagged_target_repositories]
