"""Field checkers for ACR's JSON bodies: each names the JSON path of what is wrong.

Every error is a :class:`~ferry.errors.UsageError` whose message starts with the path
(``properties.target.uri: must be ...``), which the API answers as 400.

May be imported by ``ferry/transfer`` and ``ferry/sync``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ferry.errors import UsageError

# ACR's rule for pipeline and pipeline run names: 5 to 50 letters, digits and dashes.
_NAME_RE = re.compile(r"[A-Za-z0-9-]{5,50}")
_REGISTRY_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:.]+\])"
                               r"(?::[0-9]{1,5})?$")


def bad(path: str, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}")


def json_object(value: Any, path: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise bad(path, "required object" if value is None else "must be a JSON object")
    return value


def string(value: Any, path: str, *, required: bool = True, max_length: int = 2048) -> str | None:
    if value is None or value == "":
        if required:
            raise bad(path, "required")
        return None
    if not isinstance(value, str):
        raise bad(path, "must be a string")
    if len(value) > max_length or value != value.strip():
        raise bad(path, f"must be at most {max_length} characters without surrounding spaces")
    return value


def choice(value: Any, path: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad(path, f"must be one of {', '.join(choices)}")
    for choice in choices:  # ARM enums are case-insensitive on input
        if value.lower() == choice.lower():
            return choice
    raise bad(path, f"{value!r} is not one of {', '.join(choices)}")


def string_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(path, "must be a list of strings")
    return list(value)


def option_list(value: Any, path: str, allowed: tuple[str, ...]) -> list[str]:
    result: list[str] = []
    for i, item in enumerate(string_list(value, path)):
        option = choice(item, f"{path}[{i}]", allowed, "")
        if option not in result:
            result.append(option)
    return result


def properties_of(body: Any) -> dict[str, Any]:
    body = json_object(body, "body")
    return json_object(body.get("properties"), "properties")


def is_valid_name(name: Any) -> bool:
    """ACR's rule for pipeline and run names: 5 to 50 letters, digits and dashes."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def validate_name(name: Any, path: str = "name") -> str:
    """ACR's rule for pipeline and run names: 5 to 50 letters, digits and dashes."""
    if not is_valid_name(name):
        raise bad(path, f"{name!r} must be 5 to 50 characters of letters, digits and dashes")
    return name


def secret_free_url(value: str, path: str) -> None:
    query = urlsplit(value).query.lower()
    if "sig=" in query or "signature=" in query:
        raise bad(path, "must not carry a SAS token; put the SAS in a Key Vault secret named by keyVaultUri")


def container_url(value: Any, path: str) -> str:
    url = string(value, path)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or not parts.path.strip("/"):
        raise bad(path, "must be an https (or http) container URL such as https://ACCOUNT.blob.core.windows.net/CONTAINER")
    secret_free_url(url, path)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise bad(path, "must be a plain container URL, without a query, fragment or user name")
    return url.rstrip("/")


def key_vault_uri(value: Any, path: str, *, required: bool) -> str | None:
    uri = string(value, path, required=required)
    if uri is None:
        return None
    parts = urlsplit(uri)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not parts.hostname or len(segments) not in (2, 3) or segments[0] != "secrets":
        raise bad(path, "must be a Key Vault secret URI https://VAULT.vault.azure.net/secrets/NAME[/VERSION]")
    secret_free_url(uri, path)
    return uri


def registry_host(value: Any, path: str) -> str:
    """``host[:port]`` from ``myregistry.azurecr.io``, ``https://myregistry.azurecr.io/`` and the like."""
    text = string(value, path)
    assert text is not None
    host = text
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or parts.path.strip("/") or parts.query:
            raise bad(path, "must be a registry host[:port], optionally with https://")
        host = parts.netloc
    host = host.rstrip("/")
    if not _REGISTRY_HOST_RE.fullmatch(host) or "@" in host:
        raise bad(path, f"{text!r} is not a registry host[:port]")
    return host


@dataclass(frozen=True)
class Credentials:
    """A username and password for a registry. ``repr`` hides the password."""

    username: str
    password: str = field(repr=False)

    def to_claim(self, registry: str) -> dict[str, str]:
        """The claim document: bound to ``registry``, the only host the password may be sent to."""
        return {"username": self.username, "password": self.password, "registry": registry}


def parse_credentials(value: Any, path: str) -> Credentials | None:
    if value is None:
        return None
    raw = json_object(value, path)
    username = string(raw.get("username"), f"{path}.username", required=False) or ""
    password = raw.get("password")
    if not isinstance(password, str) or not password:
        raise bad(f"{path}.password", "required when credentials are given")
    return Credentials(username, password)


def credentials_ref(raw: dict[str, Any], path: str, expected: str) -> str | None:
    """A stored ``credentialsRef`` echoed back by a GET-then-PUT round trip; only our own is accepted."""
    ref = raw.get("credentialsRef")
    if ref is None:
        return None
    if ref != expected:
        raise bad(f"{path}.credentialsRef", "is set by Ferry; give credentials {username, password} instead")
    return expected


def credentials_claim(collection: str, name: str) -> str:
    """The claim name under which a pipeline's registry credentials are kept."""
    return f"credentials/{collection}/{name.lower()}"


