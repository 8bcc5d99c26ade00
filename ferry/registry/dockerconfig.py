"""Credentials from docker's ``config.json``: ``auths``, ``credsStore`` and ``credHelpers``.

The file is ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``. A helper is the program
``docker-credential-<name>``, asked with ``get`` and the server on stdin, answering
``{"Username": ..., "Secret": ...}``; the username ``<token>`` marks an identity token.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from ferry.errors import CredentialError
from ferry.reference import DOCKER_HUB
from ferry.registry.credentials import Credentials
from ferry.settings import Settings

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (see :mod:`ferry.settings`)."""
    return Settings.from_env().docker_config


def _keys_for(registry: str) -> tuple[str, ...]:
    if registry in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_KEYS
    return (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/")


def credentials_from_docker_config(registry: str, path: Path | None = None) -> Credentials | None:
    """The credentials docker would use for ``registry``, or None when it has none."""
    path = path or config_path()
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CredentialError(f"cannot read docker config {path}: {exc}") from exc
    keys = _keys_for(registry)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _from_helper(helpers[key], key)
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return Credentials(identity_token=entry["identitytoken"])
        if entry.get("auth"):
            try:
                username, password = base64.b64decode(entry["auth"]).decode().split(":", 1)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CredentialError(f"docker config {path}: 'auth' for {key} is not base64 user:password") from exc
            return Credentials.from_user_pass(username, password)
        if entry.get("username") and entry.get("password"):
            return Credentials.from_user_pass(entry["username"], entry["password"])
    store = config.get("credsStore")
    if store:
        for key in keys:
            found = _from_helper(store, key, missing_ok=True)
            if found:
                return found
    return None


def _from_helper(helper: str, server: str, *, missing_ok: bool = False) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        completed = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=30,
                                   check=False)
    except FileNotFoundError as exc:
        raise CredentialError(f"credential helper {program} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CredentialError(f"credential helper {program} did not answer within 30 s") from exc
    if completed.returncode != 0:
        output = completed.stdout.decode(errors="replace").strip()
        if missing_ok or "credentials not found" in output.lower():
            return None
        raise CredentialError(f"credential helper {program} failed for {server} (exit {completed.returncode})")
    try:
        answer = json.loads(completed.stdout)
    except ValueError as exc:
        raise CredentialError(f"credential helper {program} answered with non-JSON") from exc
    username, secret = answer.get("Username"), answer.get("Secret")
    if not secret:
        return None
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials.from_user_pass(username, secret)


def resolve_credentials(registry: str, explicit: Credentials | None, *, azure_ad: bool = False,
                        config: Path | None = None) -> Credentials:
    """Explicit credentials win; then Azure AD if asked (or for ``*.azurecr.io``), then docker's config."""
    if explicit is not None and not explicit.is_anonymous:
        return explicit
    if azure_ad:
        from azure.identity import DefaultAzureCredential

        return Credentials(azure_credential=DefaultAzureCredential())
    found = credentials_from_docker_config(registry, config)
    if found is not None:
        return found
    if registry.endswith(".azurecr.io"):
        from azure.identity import DefaultAzureCredential

        return Credentials(azure_credential=DefaultAzureCredential())
    return Credentials.anonymous()
