"""The trust boundary of the API: a host the app is told to reach must be on the allow-list
(FERRY_ALLOWED_HOSTS) before the first connection, and a stored password goes only to the
registry it was given for. Every hostile case is refused with a 400 naming the field and the
setting, and the guard below proves no socket and no DNS lookup left loopback."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from tests.app.api import acr_body, assert_error, import_image, js, put_export, put_import

pytestmark = pytest.mark.attack


def is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # a Unix socket path
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every connection or name lookup that would leave loopback, refused and recorded."""
    seen: list[tuple[str, Any]] = []
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not is_loopback(address[0] if isinstance(address, tuple) else address):
            seen.append(("connect", address))
            raise OSError("test guard: non-loopback connection refused")
        real_connect(self, address)

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host.decode() if isinstance(host, bytes) else host):
            seen.append(("dns", host))
            raise socket.gaierror("test guard: lookup refused")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return seen


def test_the_guard_sees_a_connection_that_leaves_loopback(outside):
    with pytest.raises(OSError), socket.create_connection(("192.0.2.1", 9), timeout=0.1):
        pass
    assert outside and outside[0][0] in ("connect", "dns")


HOSTILE_STORAGE = [
    "https://evil.example.com/transfer",
    "https://169.254.169.254/metadata",          # the instance metadata service
    "https://10.0.0.5/transfer",                 # a private range
    "https://[fd00::1]/transfer",
    "https://acct.blob.core.windows.net.evil.example.com/transfer",
    "https://127.0.0.1:7777/acct/transfer",      # loopback is never implied
]


@pytest.mark.parametrize("uri", HOSTILE_STORAGE)
def test_managed_identity_token_is_never_sent_off_the_list(app_env, uname, outside, uri):
    body = acr_body("exportPipeline.json")
    body["properties"]["target"] = {"type": "AzureStorageBlobContainer", "uri": uri,
                                    "storageAccessMode": "ManagedIdentity"}
    if "127.0.0.1" in uri:  # the fixture lists 127.0.0.1 for its services; plain http is refused for a token
        body["properties"]["target"]["uri"] = uri.replace("https", "http")
    message = assert_error(put_export(uname, body), 400, "properties.target.uri")
    assert "FERRY_ALLOWED_HOSTS" in message or "https" in message
    assert outside == []


@pytest.mark.parametrize("registry", ["169.254.169.254", "10.1.2.3:5000", "evil.example.com", "localhost:2375"])
def test_pipeline_registry_off_the_list_is_refused(app_env, uname, outside, registry):
    body = acr_body("importPipeline.json")
    body["properties"]["target"] = {"registryUri": registry}
    assert_error(put_import(uname, body), 400, "properties.target.registryUri", "FERRY_ALLOWED_HOSTS")
    assert outside == []


def test_key_vault_off_the_list_is_refused(app_env, uname, outside):
    body = acr_body("exportPipeline.json")
    body["properties"]["target"]["keyVaultUri"] = "https://169.254.169.254/secrets/sas"
    assert_error(put_export(uname, body), 400, "properties.target.keyVaultUri", "FERRY_ALLOWED_HOSTS")
    assert outside == []


@pytest.mark.parametrize("registry", ["169.254.169.254", "10.1.2.3:5000", "evil.example.com", "[::ffff:a9fe:a9fe]"])
def test_import_image_from_a_host_off_the_list_starts_nothing(app_env, client, runner, outside, registry):
    body = {"source": {"registryUri": registry, "sourceImage": "library/app:1",
                       "credentials": {"username": "u", "password": "NEVERSENT"}}}
    message = assert_error(import_image(client, body), 400, "source.registryUri", "FERRY_ALLOWED_HOSTS")
    assert "NEVERSENT" not in message
    assert runner.instances() == []
    assert outside == []


def test_a_stored_password_stays_with_its_registry(app_env, uname, outside):
    body = acr_body("importPipeline.json")
    body["properties"]["target"] = {"registryUri": "target.example.com:5443",
                                    "credentials": {"username": "u", "password": "BOUNDPASSWORD"}}
    stored = js(put_import(uname, body))
    echoed = {"properties": {k: v for k, v in stored["properties"].items() if k != "provisioningState"}}
    assert "credentialsRef" in echoed["properties"]["target"]
    # The same pipeline, another registry, the reference echoed back: the password must be given again.
    echoed["properties"]["target"]["registryUri"] = "src.example.com"
    assert_error(put_import(uname, echoed), 400, "properties.target.credentials", "again")
    # The same registry with the echoed reference is a plain round trip.
    echoed["properties"]["target"]["registryUri"] = "target.example.com:5443"
    assert put_import(uname, echoed).status_code == 200
    assert outside == []
