"""Key Vault secret resolution: ``resolve_secret(uri)`` -> the secret's value.

ACR Transfer keeps a pipeline's SAS token in a Key Vault secret (``keyVaultUri``); Ferry reads
it with azure-keyvault-secrets' ``SecretClient`` and ``DefaultAzureCredential``. Secret values
never appear in errors or logs.

Loopback vaults (``https://127.0.0.1:PORT``, the test stand-in) need two relaxations, applied
only for loopback hosts:

* ``verify_challenge_resource=False``: the client checks that the challenge's resource
  (``https://vault.azure.net``) is a parent domain of the vault host, which ``127.0.0.1`` never is.
* TLS verification against a private CA bundle: pass ``ca_bundle`` (the job opener passes the
  ``FERRY_KEYVAULT_CA_BUNDLE`` setting; a real vault needs none).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ferry.azure.budget import core_options
from ferry.azure.errors import KEY_VAULT, translate_azure_errors
from ferry.errors import StorageError, UsageError
from ferry.redact import redact
from ferry.settings import KEYVAULT_CA_BUNDLE

__all__ = ["SecretRef", "parse_secret_uri", "resolve_secret"]

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
    if len(segments) not in (2, 3) or segments[0] != "secrets" or not _NAME.fullmatch(segments[1]):
        raise UsageError(f"Key Vault secret URI {shown!r} must have the path /secrets/NAME[/VERSION]")
    version = segments[2] if len(segments) == 3 else None
    if version is not None and not _VERSION.fullmatch(version):
        raise UsageError(f"Key Vault secret URI {shown!r} has an invalid version {version!r}")
    return SecretRef(f"https://{parts.netloc}", segments[1], version)


def resolve_secret(secret_uri: str, credential: Any = None, *, ca_bundle: str | None = None) -> str:
    """The current (or given) version's value of the Key Vault secret at `secret_uri`.

    `credential` defaults to ``DefaultAzureCredential()``. `ca_bundle` (the
    ``FERRY_KEYVAULT_CA_BUNDLE`` setting) is a PEM file to verify the vault's TLS certificate with.
    Raises UsageError (bad URI), BlobNotFoundError (no such secret), StorageAuthError (denied),
    CredentialError (no token), or a transient StorageError.
    """
    from azure.keyvault.secrets import SecretClient

    ref = parse_secret_uri(secret_uri)
    shown = redact(secret_uri)
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs: dict[str, Any] = core_options()
    bundle = ca_bundle
    if bundle:
        kwargs["connection_verify"] = bundle
    if ref.is_loopback:
        # The challenge names resource https://vault.azure.net; 127.0.0.1 is not under it.
        kwargs["verify_challenge_resource"] = False
    client = SecretClient(ref.vault_url, credential, **kwargs)
    with translate_azure_errors(f"Key Vault secret {shown}", KEY_VAULT,
                                tls_hint=f" (set {KEYVAULT_CA_BUNDLE} to the vault's CA bundle)"), client:
        secret = client.get_secret(ref.name, ref.version)
    value = secret.value
    if value is None:
        raise StorageError(f"Key Vault secret {shown} has no value")
    return value
