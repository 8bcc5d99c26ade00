"""The one translation of azure-core errors into :mod:`ferry.errors`, with one transient rule.

Every call into an Azure SDK (blobs, tables, Key Vault, ARM) runs inside
:func:`translate_azure_errors`, which names what was being done and which service answered::

    with translate_azure_errors(f"archive {location}"):              # blob storage (the default)
        client.get_blob_properties()
    with translate_azure_errors(f"pipelineRuns/{name}", TABLES):     # table storage
        table.get_entity(...)

Transient (worth a retry): no status, 408, 429 and 5xx, and connection failures other than TLS
verification. Messages never carry a secret: they pass through :func:`ferry.redact.redact`, and
a service's own error text is reduced to its error code.

May be imported by anything under ``ferry/azure`` and ``ferry/transfer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ferry.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    ConflictError,
    CredentialError,
    FerryError,
    NotFoundError,
    RegistryError,
    StorageAuthError,
    StorageError,
    UsageError,
)
from ferry.redact import redact


def is_transient_status(status: int | None) -> bool:
    """The one rule: no answer, a timeout (408), throttling (429) or a server error (5xx) may pass."""
    return status is None or status >= 500 or status in (408, 429)


@dataclass(frozen=True)
class AzureService:
    """How one Azure service's failures read: its name in messages and the Ferry error per kind."""

    name: str
    error: type[StorageError] | type[RegistryError]
    not_found: type[BlobNotFoundError] | type[NotFoundError]
    denied: type[StorageAuthError] | type[AccessDeniedError]
    denied_hint: str
    exists: str = "already exists (OverwriteBlobs, or --overwrite, replaces it)"


BLOBS = AzureService("storage", StorageError, BlobNotFoundError, StorageAuthError,
                     "the SAS may be expired or lack permissions, or the key or identity is not allowed")
TABLES = AzureService("table storage", StorageError, NotFoundError, StorageAuthError,
                      "the app's storage credentials were rejected",
                      exists="was changed concurrently; retry the request")
KEY_VAULT = AzureService("Key Vault", StorageError, BlobNotFoundError, StorageAuthError,
                         "the identity may lack the 'get' secret permission")
ARM = AzureService("Azure Resource Manager", RegistryError, NotFoundError, AccessDeniedError,
                   "the identity lacks the role this needs")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", None) or "")


@contextmanager
def translate_azure_errors(what: str, service: AzureService = BLOBS, *,
                           reason: Callable[[BaseException], str] | None = None,
                           tls_hint: str = "") -> Iterator[None]:
    """Translate azure-core errors raised inside into Ferry errors about ``what``.

    ``reason`` may give a sanitised remote reason (ACR's ``CODE: message``) to append; by default
    only the service's error code is shown. ``tls_hint`` is added to a TLS verification failure
    (which is permanent). Ferry errors raised inside pass unchanged.
    """
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    def detail(exc: BaseException) -> str:
        text = redact(reason(exc)) if reason else _code(exc)
        return f" ({text})" if text else ""

    try:
        yield
    except FerryError:
        raise
    except ResourceNotFoundError as exc:
        raise service.not_found(f"{what}: not found{detail(exc)}", status=404) from exc
    except (ResourceExistsError, ResourceModifiedError) as exc:
        raise ConflictError(f"{what}: {service.exists}{detail(exc)}") from exc
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:  # a credential that could not get a token at all
            raise CredentialError(f"{what}: no Azure credential could authenticate: "
                                  f"{redact(_first_line(exc))}") from exc
        raise service.denied(f"{what}: access denied ({status}){detail(exc)}: {service.denied_hint}",
                             status=status) from exc
    except HttpResponseError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise service.denied(f"{what}: access denied ({status}){detail(exc)}: {service.denied_hint}",
                                 status=status) from exc
        if status == 412:
            raise ConflictError(f"{what}: {service.exists} (condition not met)") from exc
        raise service.error(f"{what}: {service.name} answered {status}{detail(exc)}", status=status,
                            transient=is_transient_status(status)) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        message = _first_line(exc)
        if "Bearer token authentication is not permitted" in message:
            raise UsageError(f"{what}: Azure AD (managed identity) auth needs an https endpoint") from exc
        tls = "CERTIFICATE_VERIFY_FAILED" in str(exc)
        raise service.error(f"{what}: cannot reach {service.name}: {redact(message)}"
                            + (tls_hint if tls else ""), transient=not tls) from exc
    except AzureError as exc:
        raise service.error(f"{what}: {service.name} failed: {type(exc).__name__}", transient=True) from exc
