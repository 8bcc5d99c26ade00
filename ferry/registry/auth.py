"""Registry authentication as an ``httpx.Auth`` flow.

Handles the challenges a registry answers with on ``401``:

* ``Basic``: send the username and password.
* ``Bearer realm=...,service=...,scope=...``: get a token from the realm, as Docker Hub, GHCR and
  distribution do. With a username/password the realm is asked with basic auth (GET); with an
  identity token the OAuth2 refresh-token grant is used (POST). For ACR with Azure AD, the AAD token
  is first exchanged at ``/oauth2/exchange`` for an ACR refresh token.

Tokens are cached per scope and sent pre-emptively, so a request with a streamed body is not
challenged after its body has gone: callers authorize a scope with a body-less request first.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ferry.errors import AuthenticationError, CredentialError, TransientRegistryError
from ferry.registry.bodies import MAX_JSON_BYTES, cap_stream
from ferry.registry.credentials import Credentials

AZURE_AD_SCOPE = "https://management.azure.com/.default"
_PATH_RE = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_TOKEN_LIFETIME_MARGIN = 30.0
#: Token requests ask for an unencoded answer, so the cap on the bytes read is a cap on memory.
_TOKEN_HEADERS = {"Accept-Encoding": "identity"}


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse one ``WWW-Authenticate`` value (``Bearer realm="…",service="…"``)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    return Challenge(scheme=scheme.lower(), params=dict(_PARAM_RE.findall(rest)))


def scope_for(request: httpx.Request) -> str:
    """The token scope a Distribution API request needs, derived from its path and method."""
    match = _PATH_RE.match(request.url.path)
    if not match:
        return ""
    actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
    if request.method == "DELETE":
        actions = "delete"
    return f"repository:{match['name']}:{actions}"


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    """Authenticate requests to one registry with ``credentials``; thread-safe."""

    requires_response_body = False

    def __init__(self, registry: str, credentials: Credentials) -> None:
        self.registry = registry
        self.credentials = credentials
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._use_basic = False
        self._acr_refresh_token: str | None = None
        self.token_requests = 0

    # -- the flow ---------------------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = scope_for(request)
        self._apply_cached(request, scope)
        response = yield request
        if response.status_code != 401:
            return
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None:
            return
        if challenge.scheme == "basic":
            if not (self.credentials.username and self.credentials.password):
                return
            with self._lock:
                self._use_basic = True
            request.headers["Authorization"] = _basic(self.credentials.username, self.credentials.password)
        elif challenge.scheme == "bearer":
            wanted = challenge.params.get("scope") or scope
            token, lifetime = yield from self._fetch_token(challenge, wanted)
            with self._lock:
                self._tokens[scope] = (token, time.monotonic() + lifetime - _TOKEN_LIFETIME_MARGIN)
            request.headers["Authorization"] = f"Bearer {token}"
        else:
            return
        yield request  # httpx reads and releases the 401 response itself

    def _apply_cached(self, request: httpx.Request, scope: str) -> None:
        with self._lock:
            if self._use_basic and self.credentials.username and self.credentials.password:
                request.headers["Authorization"] = _basic(self.credentials.username, self.credentials.password)
                return
            cached = self._tokens.get(scope)
        if cached and cached[1] > time.monotonic():
            request.headers["Authorization"] = f"Bearer {cached[0]}"

    # -- tokens -----------------------------------------------------------------------------
    def _fetch_token(
        self, challenge: Challenge, scope: str
    ) -> Generator[httpx.Request, httpx.Response, tuple[str, float]]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationError(f"registry {self.registry} sent a Bearer challenge without a realm")
        service = challenge.params.get("service", "")
        creds = self.credentials
        self.token_requests += 1
        if creds.wants_aad_exchange or creds.identity_token:
            refresh = creds.identity_token or (yield from self._acr_exchange(realm, service))
            form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": service, "scope": scope,
                    "client_id": "ferry"}
            response = yield httpx.Request("POST", realm, data=form, headers=_TOKEN_HEADERS)
        else:
            params = {"service": service} if service else {}
            if scope:
                params["scope"] = scope
            headers = dict(_TOKEN_HEADERS)
            if creds.username and creds.password:
                headers["Authorization"] = _basic(creds.username, creds.password)
            response = yield httpx.Request("GET", realm, params=params, headers=headers)
        return self._read_token(response, realm)

    def _acr_exchange(self, realm: str, service: str) -> Generator[httpx.Request, httpx.Response, str]:
        """Trade an Azure AD access token for an ACR refresh token at ``/oauth2/exchange``."""
        with self._lock:
            if self._acr_refresh_token:
                return self._acr_refresh_token
        creds = self.credentials
        aad_token = creds.aad_access_token
        if aad_token is None:
            try:
                aad_token = creds.azure_credential.get_token(AZURE_AD_SCOPE).token
            except Exception as exc:  # azure-identity raises several unrelated types
                raise CredentialError(f"could not get an Azure AD token for {self.registry}: {exc}") from exc
        parts = urlsplit(realm)
        exchange_url = f"{parts.scheme}://{parts.netloc}/oauth2/exchange"
        form = {"grant_type": "access_token", "service": service, "access_token": aad_token}
        if creds.azure_tenant:
            form["tenant"] = creds.azure_tenant
        response = yield httpx.Request("POST", exchange_url, data=form, headers=_TOKEN_HEADERS)
        self._read_capped(response, f"answer of {urlsplit(exchange_url).netloc}/oauth2/exchange")
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"registry {self.registry} rejected the Azure AD token at /oauth2/exchange "
                f"({response.status_code})", status=response.status_code)
        _raise_for_token_status(response, self.registry, "/oauth2/exchange")
        refresh = _json_field(response, "refresh_token", self.registry)
        with self._lock:
            self._acr_refresh_token = refresh
        return refresh

    def _read_capped(self, response: httpx.Response, what: str) -> None:
        """Read a token service's answer, refusing it past 4 MiB before that much is read."""
        cap_stream(response, MAX_JSON_BYTES, what=f"token service {what} for {self.registry}")
        try:
            response.read()
        except httpx.TransportError as exc:
            raise TransientRegistryError(
                f"token service of {self.registry}: connection lost while reading: {type(exc).__name__}") from exc

    def _read_token(self, response: httpx.Response, realm: str) -> tuple[str, float]:
        parts = urlsplit(realm)
        self._read_capped(response, f"answer of {parts.netloc}{parts.path}")
        if response.status_code in (401, 403):
            who = f"user {self.credentials.username!r}" if self.credentials.username else "these credentials"
            raise AuthenticationError(
                f"registry {self.registry} rejected {who} at its token service ({response.status_code})",
                status=response.status_code)
        _raise_for_token_status(response, self.registry, urlsplit(realm).path)
        try:
            body = response.json()
        except ValueError as exc:
            raise AuthenticationError(f"token service of {self.registry} answered with non-JSON") from exc
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"token service of {self.registry} answered without a token")
        lifetime = body.get("expires_in")
        return token, float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 60.0


def _raise_for_token_status(response: httpx.Response, registry: str, what: str) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientRegistryError(
            f"token service of {registry} ({what}) answered {response.status_code}", status=response.status_code)
    if response.status_code >= 400:
        raise AuthenticationError(
            f"token service of {registry} ({what}) answered {response.status_code}", status=response.status_code)


def _json_field(response: httpx.Response, name: str, registry: str) -> str:
    try:
        value = response.json().get(name)
    except ValueError:
        value = None
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"registry {registry} answered without {name}")
    return value
