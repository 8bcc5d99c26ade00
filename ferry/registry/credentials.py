"""Registry credentials: what the user gave, and where to find more.

A :class:`Credentials` is one of: anonymous, username/password, an identity (refresh) token, an
Azure AD access token given as the password with no username (cross-tenant ``az acr import``), or
an Azure ``TokenCredential`` (DefaultAzureCredential) for the ACR token exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.errors import UsageError

#: The username docker and ACR use to say "the password is a refresh token".
TOKEN_USERNAME = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to one registry. ``repr`` never shows a secret."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    azure_credential: Any = None  # an azure.core.credentials.TokenCredential
    azure_tenant: str | None = None

    @classmethod
    def anonymous(cls) -> Credentials:
        return cls()

    @classmethod
    def from_user_pass(cls, username: str | None, password: str | None) -> Credentials:
        """``-u/-p``: a username with ``TOKEN_USERNAME`` means the password is a refresh token."""
        if username and password is None:
            raise UsageError(f"a password is required for user {username!r}")
        if username == TOKEN_USERNAME:
            return cls(identity_token=password)
        return cls(username=username or None, password=password)

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """``USER:PASSWORD`` as skopeo's ``--creds``; ``:TOKEN`` is an AAD token without a user."""
        if ":" not in text:
            raise UsageError("credentials must be USER:PASSWORD (or :TOKEN for an access token)")
        username, password = text.split(":", 1)
        return cls.from_user_pass(username or None, password)

    @property
    def is_anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.azure_credential)

    @property
    def aad_access_token(self) -> str | None:
        """A password given without a username is an Azure AD access token for the ACR exchange."""
        return self.password if self.password and not self.username else None

    @property
    def wants_aad_exchange(self) -> bool:
        return self.azure_credential is not None or self.aad_access_token is not None

    def __repr__(self) -> str:
        kind = (
            "azure" if self.azure_credential else "aad-token" if self.aad_access_token
            else "identity-token" if self.identity_token else "basic" if self.username else "anonymous"
        )
        return f"Credentials({kind}, username={self.username!r})"
