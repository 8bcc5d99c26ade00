"""Key Vault secret resolution: ``resolve_secret(uri)`` -> the secret's value.

ACR Transfer keeps a pipeline's SAS token in a Key Vault secret (``keyVaultUri``); Ferry reads
it with azure-keyvault-secrets' ``SecretClient`` and ``DefaultAzureCredential``. Secret values
never appear in errors or logs.

Loopback vaults (``https://127.0.0.1:PORT``, the test stand-in) need two relaxations, applied
only for loopback hosts:

* ``verify_challenge_resource=False``: the client checks that the challenge's resource
  (``https://vault.azure.net``) is a parent domain of the vault host, which ``127.0.0.1`` never is.
* TLS verification against a private CA bundle: pass ``ca_bundle`` or set
  ``FERRY_KEYVAULT_CA_BUNDLE`` (any vault; a real vault needs neither).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ferry.errors import BlobNotFoundError, CredentialError, StorageAuthError, StorageError, UsageError
from ferry.redact import redact

__all__ = ["SecretRef", "parse_secret_uri", "resolve_secret"]

CA_BUNDLE_ENV = "FERRY_KEYVAULT_CA_BUNDLE"

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")


@dataclass(frozen=True)
class SecretRef:
    """A parsed secret URI: ``vault_url`` (``https://host[:port]``), ``name`` and optional ``version``."""

    vault_url: str
    name: str
    version: str | None = None

    @property
    def is_loopback(self) -> bool:
        return _is_loopback(urlsplit(self.vault_url).hostname or "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_secret_uri(uri: str) -> SecretRef:
    """Parse ``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]``; UsageError naming the URI if malformed."""
    shown = redact(uri)
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(f"Key Vault secret URI {shown!r} must be https://VAULT.vault.azure.net/secrets/NAME[/VERSION]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"Key Vault secret URI {shown!r} must not carry a query, fragment or user info")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) not in (2, 3) or segments[0] != "secrets" or not _NAME.match(segments[1]):
        raise UsageError(f"Key Vault secret URI {shown!r} must have the path /secrets/NAME[/VERSION]")
    version = segments[2] if len(segments) == 3 else None
    if version is not None and not _VERSION.match(version):
        raise UsageError(f"Key Vault secret URI {shown!r} has an invalid version {version!r}")
    return SecretRef(f"https://{parts.netloc}", segments[1], version)


def resolve_secret(secret_uri: str, credential: Any = None, *, ca_bundle: str | None = None) -> str:
    """The current (or given) version's value of the Key Vault secret at `secret_uri`.

    `credential` defaults to ``DefaultAzureCredential()``. `ca_bundle` (default
    ``$FERRY_KEYVAULT_CA_BUNDLE``) is a PEM file to verify the vault's TLS certificate with.
    Raises UsageError (bad URI), BlobNotFoundError (no such secret), StorageAuthError (denied),
    CredentialError (no token), or a transient StorageError.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.keyvault.secrets import SecretClient

    ref = parse_secret_uri(secret_uri)
    shown = redact(secret_uri)
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs: dict[str, Any] = {}
    bundle = ca_bundle or os.environ.get(CA_BUNDLE_ENV)
    if bundle:
        kwargs["connection_verify"] = bundle
    if ref.is_loopback:
        # The challenge names resource https://vault.azure.net; 127.0.0.1 is not under it.
        kwargs["verify_challenge_resource"] = False
    client = SecretClient(ref.vault_url, credential, **kwargs)
    try:
        with client:
            secret = client.get_secret(ref.name, ref.version)
    except ResourceNotFoundError as exc:
        raise BlobNotFoundError(f"Key Vault secret {shown} not found", status=404) from exc
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            raise StorageAuthError(f"Key Vault denied reading secret {shown} ({status}): the identity "
                                   "may lack the 'get' secret permission", status=status) from exc
        raise CredentialError(f"no Azure credential could get a token for Key Vault secret {shown}: "
                              f"{redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}") from exc
    except HttpResponseError as exc:
        status = exc.status_code
        transient = status is None or status >= 500 or status == 429
        raise StorageError(f"Key Vault answered {status} for secret {shown}", status=status,
                           transient=transient) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        tls = "CERTIFICATE_VERIFY_FAILED" in str(exc)
        hint = f" (set {CA_BUNDLE_ENV} to the vault's CA bundle)" if tls else ""
        raise StorageError(f"cannot reach Key Vault for secret {shown}: {redact(str(exc))}{hint}",
                           transient=not tls) from exc
    value = secret.value
    if value is None:
        raise StorageError(f"Key Vault secret {shown} has no value")
    return value
