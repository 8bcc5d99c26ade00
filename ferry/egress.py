"""Which hosts Ferry may reach when it acts for an API caller: the egress allow-list.

The Functions app holds registry passwords, SAS tokens and a managed identity, so whoever can call
its API must not be able to send them elsewhere. The app (HTTP API, triggers, activities) checks
every host against an :class:`EgressPolicy` before the first connection to it; the CLI does not
(a user on their own machine chooses their hosts).

Patterns, comma-separated in the app setting ``FERRY_ALLOWED_HOSTS``:

* ``host`` or ``host:port``: that host (any port, or that port);
* ``*.suffix`` or ``*.suffix:port``: any name under ``suffix``;
* ``*`` alone: any host at all. ``ferry run`` uses it (a user running pipelines on their own
  machine chooses their hosts, as with every other CLI command); never set it in a deployment.

Without the setting, Azure's public endpoints are allowed (``*.azurecr.io``,
``*.blob.core.windows.net``, ``*.vault.azure.net``, ``management.azure.com``); with it, exactly its
patterns (list your own accounts and registries to lock a deployment down). The registry named by
``FERRY_REGISTRY`` is always allowed. An IP literal or ``localhost`` is allowed only when listed
exactly (a wildcard never implies one), so link-local, metadata, private and loopback addresses
are refused unless an administrator names them. Names are matched as written: a name that
resolves to a private address is the DNS administrator's choice, not the caller's.

May be imported by anything in ``ferry/``; imports only :mod:`ferry.errors` and :mod:`ferry.settings`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ferry.errors import UsageError
from ferry.settings import ALLOWED_HOSTS, Settings

AZURE_PUBLIC = ("*.azurecr.io", "*.blob.core.windows.net", "*.vault.azure.net", "management.azure.com")


class EgressDeniedError(UsageError):
    """A host is not on the allow-list; raised before any connection to it."""


def split_host(authority: str) -> tuple[str, int | None]:
    """``host`` and port from ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (lower-cased host)."""
    parts = urlsplit(f"//{authority.strip()}")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{authority!r} is not a host[:port]") from exc
    return (parts.hostname or "").lower().rstrip("."), port


def is_special_address(host: str) -> bool:
    """An IP literal (or ``localhost``): never matched by a wildcard or the defaults."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Pattern:
    host: str
    port: int | None
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> _Pattern:
        wildcard = text.startswith("*.")
        host, port = split_host(text[2:] if wildcard else text)
        if not host:
            raise UsageError(f"app setting {ALLOWED_HOSTS}: {text!r} is not a host, host:port or *.suffix")
        return cls(host, port, wildcard)

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.wildcard:
            return not is_special_address(host) and host.endswith("." + self.host)
        return host == self.host


class EgressPolicy:
    """An allow-list of hosts; :meth:`check` raises :class:`EgressDeniedError` naming the setting."""

    def __init__(self, patterns: Iterable[str]) -> None:
        listed = [p.strip() for p in patterns if p.strip()]
        self.open = "*" in listed
        self.patterns = tuple(_Pattern.parse(p) for p in listed if p != "*")

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        listed = [p for p in settings.get(ALLOWED_HOSTS).split(",") if p.strip()]
        return cls([*(listed or AZURE_PUBLIC), *([settings.registry] if settings.registry else [])])

    def allows(self, host: str, port: int | None = None) -> bool:
        host = host.lower().rstrip(".")
        return self.open or any(p.matches(host, port) for p in self.patterns)

    def check_host(self, authority: str, what: str) -> None:
        """Refuse ``authority`` (``host[:port]``) unless allowed; ``what`` names who asked for it."""
        host, port = split_host(authority)
        if not self.allows(host, port):
            raise EgressDeniedError(f"{what}: host {authority} is not allowed; add it to the app setting "
                                    f"{ALLOWED_HOSTS} to let Ferry reach it")

    def check_url(self, url: str, what: str, *, https: bool = False) -> None:
        """Refuse ``url`` unless its host is allowed (and, with ``https``, its scheme is https)."""
        parts = urlsplit(url)
        if https and parts.scheme != "https":
            raise EgressDeniedError(f"{what}: {parts.scheme or 'no'} scheme; Ferry sends Azure AD tokens over "
                                    "https only")
        self.check_host(parts.netloc.rpartition("@")[2], what)
