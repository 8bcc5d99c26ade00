"""A token server for distribution's `auth.token`, plus ACR's AAD exchange endpoints.

Endpoints (all on http://127.0.0.1:PORT):

* ``GET /token`` and ``GET /oauth2/token`` -- Docker token protocol. Query ``service``, ``scope``
  (repeatable, ``repository:NAME:pull,push``). Basic auth with a configured user, or with user
  ``00000000-0000-0000-0000-000000000000`` and a refresh token we issued as password (how
  ``docker login`` uses ACR refresh tokens). No credentials = anonymous: pull only when
  ``allow_anonymous_pull``, otherwise a token with an empty access list (as Docker Hub does).
  Answers ``{"token", "access_token", "expires_in", "issued_at"}``; 401 on bad credentials.
* ``POST /token`` and ``POST /oauth2/token`` -- OAuth2 form: ``grant_type=password``
  (username, password) or ``grant_type=refresh_token`` (refresh_token), with ``service`` and
  space-separated ``scope``. Answers ``{"access_token", "refresh_token", "expires_in", ...}``.
* ``POST /oauth2/exchange`` -- ACR's AAD exchange: ``grant_type=access_token``, ``service``,
  ``access_token`` (must be in ``accepted_aad_tokens``), optional ``tenant``. Answers
  ``{"refresh_token": JWT}``; 401 for an unknown AAD token, 400 if ``service`` is not ours.

Access tokens are ES256 JWTs with ``x5c`` = our self-signed certificate, whose PEM is written to
``cert_bundle`` for distribution's ``rootcertbundle``. ``aud`` is the requested service (ours by
default), so a client that sends the wrong service is caught by the registry, not here.
Users get the actions they request, limited by ``permissions[user]`` when given.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from ._http import LoopbackServer, QuietHandler
from .certs import self_signed

__all__ = ["ACR_NULL_USER", "Grant", "TokenServer", "parse_scope"]

ACR_NULL_USER = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Grant:
    """One issued access token: who got it, for which audience, with which access claims."""

    subject: str
    audience: str
    access: list[dict[str, Any]] = field(default_factory=list)


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """Split ``type:name:a,b`` into (type, name, actions). Raises ValueError when malformed."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        raise ValueError(f"bad scope {scope!r}")
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    """The token server; it starts serving on construction. Call `stop()` when done.

    `users` maps username -> password. `permissions` optionally maps a subject (username) to the
    actions it may get (e.g. ``{"reader": {"pull"}}``); subjects not listed get what they ask.
    Subjects of AAD-exchanged refresh tokens are ``"aad:<access_token>"``.
    Counters (`token_requests`, `exchange_requests`, `denied_requests`) and `grants` are
    updated under a lock; `reset_counters()` zeroes them.
    """

    def __init__(
        self,
        workdir: Path,
        users: Mapping[str, str] | None = None,
        *,
        service: str = "ferry-test-registry",
        issuer: str = "ferry-test-token-issuer",
        allow_anonymous_pull: bool = False,
        accepted_aad_tokens: Collection[str] = (),
        permissions: Mapping[str, Collection[str]] | None = None,
        token_ttl: int = 300,
    ) -> None:
        self.users = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.allow_anonymous_pull = allow_anonymous_pull
        self.accepted_aad_tokens = set(accepted_aad_tokens)
        self.permissions = {k: set(v) for k, v in (permissions or {}).items()}
        self.token_ttl = token_ttl
        self._key, self._cert = self_signed(issuer, days=30)
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert_bundle = workdir / "token-signer.pem"
        self.cert_bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()
        self._refresh_tokens: dict[str, str] = {}
        self.token_requests = 0
        self.exchange_requests = 0
        self.denied_requests = 0
        self.grants: list[Grant] = []
        self._server = LoopbackServer(_Handler, self)
        self.port = self._server.port
        self.url = self._server.url
        self.realm = f"{self.url}/token"
        self.acr_realm = f"{self.url}/oauth2/token"
        self.exchange_url = f"{self.url}/oauth2/exchange"

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        self._server.stop()

    def reset_counters(self) -> None:
        """Zero the counters and forget the recorded grants (issued tokens stay valid)."""
        with self._lock:
            self.token_requests = self.exchange_requests = self.denied_requests = 0
            self.grants.clear()

    # --- token minting (public so tests can craft tokens) ---

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})

    def issue_access_token(
        self, subject: str, access: list[dict[str, Any]], audience: str | None = None, ttl: int | None = None
    ) -> str:
        """Mint an access JWT the registry will accept (if `audience` is its service)."""
        now = int(time.time())
        audience = audience or self.service
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + (self.token_ttl if ttl is None else ttl),
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        with self._lock:
            self.grants.append(Grant(subject, audience, access))
        return self._sign(claims)

    def issue_refresh_token(self, subject: str, audience: str | None = None) -> str:
        """Mint a refresh token (a JWT, like ACR's) that this server will accept for `subject`."""
        now = int(time.time())
        token = self._sign(
            {
                "iss": self.issuer,
                "sub": subject,
                "aud": audience or self.service,
                "exp": now + 3 * 3600,
                "nbf": now - 10,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "grant_type": "refresh_token",
            }
        )
        with self._lock:
            self._refresh_tokens[token] = subject
        return token

    # --- decisions used by the handler ---

    def subject_for_refresh_token(self, token: str) -> str | None:
        """The subject a refresh token was issued to, or None if we never issued it."""
        with self._lock:
            return self._refresh_tokens.get(token)

    def check_password(self, username: str, password: str) -> str | None:
        """Return the subject for valid credentials (incl. the ACR null-GUID form), else None."""
        if username == ACR_NULL_USER:
            return self.subject_for_refresh_token(password)
        if username in self.users and secrets.compare_digest(self.users[username], password):
            return username
        return None

    def grant(self, subject: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The access claims for `subject` (None = anonymous) asking for `scopes`."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            try:
                kind, name, wanted = parse_scope(scope)
            except ValueError:
                continue
            if subject is None:
                allowed: set[str] | None = {"pull"} if self.allow_anonymous_pull else set()
            else:
                allowed = self.permissions.get(subject)
            actions = [a for a in wanted if allowed is None or a in allowed]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        return access

    def _count(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)


class _Handler(QuietHandler):
    server_version = "ferry-harness-token-server"

    @property
    def owner(self) -> TokenServer:
        return self.server.owner  # type: ignore[attr-defined]

    def _deny(self, status: int = 401, error: str = "invalid credentials") -> None:
        self.owner._count("denied_requests")
        self.reply_json(
            status,
            {"errors": [{"code": "UNAUTHORIZED", "message": error}], "error": error},
            headers={"WWW-Authenticate": 'Basic realm="ferry-harness-token-server"'},
        )

    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except ValueError:
            return ("", "")
        return user, password

    def _token_reply(self, subject: str | None, service: str, scopes: list[str], refresh: str | None) -> None:
        access = self.owner.grant(subject, scopes)
        token = self.owner.issue_access_token(subject or "", access, audience=service)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.owner.token_ttl,
            "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if refresh:
            body["refresh_token"] = refresh
        if scopes:
            body["scope"] = " ".join(scopes)
        self.reply_json(200, body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path not in ("/token", "/oauth2/token"):
            self.reply_json(404, {"error": "not found"})
            return
        self.owner._count("token_requests")
        query = parse_qs(url.query)
        service = query.get("service", [self.owner.service])[-1]
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        creds = self._basic()
        subject = None
        if creds is not None:
            subject = self.owner.check_password(*creds)
            if subject is None:
                self._deny()
                return
        self._token_reply(subject, service, scopes, None)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self.read_form()
        if path == "/oauth2/exchange":
            self._exchange(form)
            return
        if path not in ("/token", "/oauth2/token"):
            self.reply_json(404, {"error": "not found"})
            return
        self.owner._count("token_requests")
        service = form.get("service") or self.owner.service
        scopes = [s for s in form.get("scope", "").split(" ") if s]
        grant_type = form.get("grant_type", "")
        if grant_type == "password":
            subject = self.owner.check_password(form.get("username", ""), form.get("password", ""))
        elif grant_type == "refresh_token":
            subject = self.owner.subject_for_refresh_token(form.get("refresh_token", ""))
        else:
            self._deny(400, f"unsupported grant_type {grant_type!r}")
            return
        if subject is None:
            self._deny()
            return
        refresh = form.get("refresh_token") or self.owner.issue_refresh_token(subject, service)
        self._token_reply(subject, service, scopes, refresh)

    def _exchange(self, form: dict[str, str]) -> None:
        self.owner._count("exchange_requests")
        if form.get("grant_type") != "access_token":
            self._deny(400, f"unsupported grant_type {form.get('grant_type')!r}")
            return
        if form.get("service") != self.owner.service:
            self._deny(400, f"unknown service {form.get('service')!r}, expected {self.owner.service!r}")
            return
        aad_token = form.get("access_token", "")
        if aad_token not in self.owner.accepted_aad_tokens:
            self._deny(401, "AAD access token not accepted")
            return
        refresh = self.owner.issue_refresh_token(f"aad:{aad_token}", self.owner.service)
        self.reply_json(200, {"refresh_token": refresh})
