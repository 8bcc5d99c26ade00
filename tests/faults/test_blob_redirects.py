"""A registry serving a blob from its storage redirects the GET to a signed URL on another host.
Ferry follows it without the registry's credentials; under the app's allow-list it follows only
to a public DNS name, never to an IP address or localhost (an attacker's registry cannot point
Ferry at the metadata service or a private range)."""

from __future__ import annotations

import hashlib
import threading

import pytest

from ferry.egress import EgressDeniedError, EgressPolicy
from ferry.oci.descriptor import Descriptor
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from tests.harness._http import LoopbackServer, QuietHandler

pytestmark = pytest.mark.attack
BLOB = b"layer bytes served from storage" * 100
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Storage:
    """Where the registry redirects: records the Authorization headers it is sent."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        self.lock = threading.Lock()
        self.server = LoopbackServer(_StorageHandler, self)


class _StorageHandler(QuietHandler):
    def do_GET(self) -> None:
        owner: Storage = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.authorizations.append(self.headers.get("Authorization"))
        self.reply(200, BLOB, content_type="application/octet-stream")


class Registry:
    def __init__(self, storage_url: str) -> None:
        self.storage_url = storage_url
        self.server = LoopbackServer(_RegistryHandler, self)


class _RegistryHandler(QuietHandler):
    def do_GET(self) -> None:
        owner: Registry = self.server.owner  # type: ignore[attr-defined]
        self.send_response(307)
        self.send_header("Location", f"{owner.storage_url}/blobs/x?sig=signed")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def redirecting():
    storage = Storage()
    registry = Registry(storage.server.url)
    yield registry, storage
    registry.server.stop()
    storage.server.stop()


def read(client: RegistryClient) -> bytes:
    descriptor = Descriptor("application/octet-stream", DIGEST, len(BLOB))
    with client.open_blob("app", descriptor) as stream:
        return b"".join(stream)


def test_the_cli_follows_the_redirect_without_the_registrys_credentials(redirecting):
    registry, storage = redirecting
    host = registry.server.url.removeprefix("http://")
    with RegistryClient(host, Credentials.from_user_pass("u", "REGISTRYPASSWORD")) as client:
        assert read(client) == BLOB
    assert storage.authorizations == [None]


def test_the_app_never_follows_a_redirect_to_an_ip_address(redirecting):
    registry, storage = redirecting
    host = registry.server.url.removeprefix("http://")
    with RegistryClient(host, egress=EgressPolicy([host])) as client, pytest.raises(EgressDeniedError):
        read(client)
    assert storage.authorizations == []  # no connection reached the storage host
