"""The one exception tree of Ferry.

Every error Ferry raises derives from :class:`FerryError`. Lower-level errors (httpx, OS, Azure SDK)
are translated at the edge with ``raise ... from exc``. Each error says whether it is *transient*:
a transient error may succeed when retried unchanged (connection reset, 5xx, 429); a permanent one
will not (not found, denied, digest mismatch, bad input).

::

    FerryError
    ├── UsageError                 bad input from the user: names the field or value
    │   └── InvalidReferenceError  a reference that cannot be parsed
    ├── RegistryError              a registry answered with an error
    │   ├── AuthenticationError    credentials missing or rejected (401)
    │   ├── AccessDeniedError      credentials valid but not allowed (403)
    │   ├── NotFoundError          manifest, blob, tag or repository unknown (404)
    │   └── TransientRegistryError 5xx, 429, connection failures: worth a retry
    ├── IntegrityError             bytes do not match their digest or size
    ├── ConflictError              an existing tag points elsewhere and overwrite was not asked for
    ├── UnsupportedError           a media type or feature Ferry cannot handle
    ├── CredentialError            a credential source (docker config, helper, Azure) failed
    ├── TransientError             a batch or job step that may pass when retried
    └── StorageError               Azure Blob Storage or Key Vault answered with an error;
        │                          transient for 5xx, timeouts and connection failures
        ├── StorageAuthError       key, SAS or token rejected (401/403): expired or lacking permission
        └── BlobNotFoundError      container, blob or secret unknown (404)
"""

from __future__ import annotations


class FerryError(Exception):
    """Base of every Ferry error. ``transient`` tells whether retrying unchanged may succeed."""

    transient: bool = False
    exit_code: int = 1
    #: Seconds a server asked to wait before a retry (``Retry-After``), when it said.
    retry_after: float | None = None

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient

    @property
    def message(self) -> str:
        return str(self)


class UsageError(FerryError):
    """The caller's input is wrong; the message names the bad field or value."""

    exit_code = 2


class InvalidReferenceError(UsageError):
    """A reference (``registry/repo:tag@digest``) that cannot be parsed."""


class RegistryError(FerryError):
    """A registry answered with an error. ``status`` is the HTTP status when there was one."""

    exit_code = 3

    def __init__(self, message: str, *, status: int | None = None, transient: bool | None = None) -> None:
        super().__init__(message, transient=transient)
        self.status = status


class AuthenticationError(RegistryError):
    """Credentials are missing or were rejected."""

    exit_code = 4


class AccessDeniedError(RegistryError):
    """Credentials were accepted but do not grant the requested action."""

    exit_code = 4


class NotFoundError(RegistryError):
    """A manifest, blob, tag or repository does not exist."""

    exit_code = 5


class TransientRegistryError(RegistryError):
    """A fault that may pass: connection failure, timeout, 5xx or 429. ``retry_after`` holds the
    seconds a server asked to wait (``Retry-After``), when it said."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class IntegrityError(FerryError):
    """Bytes do not match the digest or size that describes them."""

    exit_code = 6


class ConflictError(FerryError):
    """The destination already holds something different and overwriting was not requested."""

    exit_code = 7


class UnsupportedError(FerryError):
    """A media type, scheme or feature that Ferry does not handle."""


class CredentialError(FerryError):
    """A credential source (docker config, credential helper, Azure identity) failed."""

    exit_code = 4


class StorageError(FerryError):
    """Azure Blob Storage (or Key Vault) answered with an error, or could not be reached.

    ``status`` is the HTTP status when there was one. Transient for 5xx, timeouts and connection
    failures. Messages never carry a SAS signature or an account key.
    """

    exit_code = 3

    def __init__(self, message: str, *, status: int | None = None, transient: bool | None = None) -> None:
        super().__init__(message, transient=transient)
        self.status = status


class StorageAuthError(StorageError):
    """A key, SAS or token was rejected (401/403): expired, or lacking a permission."""

    exit_code = 4


class BlobNotFoundError(StorageError):
    """A storage account, container, blob or Key Vault secret does not exist (404)."""

    exit_code = 5


class TransientError(FerryError):
    """A fault outside any one registry or store that may pass when retried (e.g. a batch of blobs)."""

    transient = True


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> RegistryError:
    """The RegistryError for an HTTP error ``status``: 401, 403, 404, 429/5xx (transient) or other."""
    if status == 401:
        return AuthenticationError(f"{message}: authentication required or credentials rejected", status=status)
    if status == 403:
        return AccessDeniedError(f"{message}: access denied", status=status)
    if status == 404:
        return NotFoundError(message, status=status)
    if status == 429 or status >= 500:
        return TransientRegistryError(message, status=status, retry_after=retry_after)
    return RegistryError(message, status=status)
