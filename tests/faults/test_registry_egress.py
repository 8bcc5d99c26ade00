"""The registry client under the app's allow-list: a token realm, a redirect or a link on a host
the list does not name is refused before any connection; a remote error body is never echoed
beyond its registry error codes."""

from __future__ import annotations

import json

import pytest

from ferry.egress import EgressDeniedError, EgressPolicy
from ferry.errors import RegistryError
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials

pytestmark = pytest.mark.attack


def test_a_token_realm_on_another_host_is_refused_before_contact(token_registry, token_server):
    token_server.reset_counters()
    only_the_registry = EgressPolicy([token_registry.host])
    with RegistryClient(token_registry.host, Credentials.from_user_pass(*token_registry.credentials),
                        egress=only_the_registry) as client, pytest.raises(EgressDeniedError) as raised:
        client.list_tags("egress/app")
    assert "FERRY_ALLOWED_HOSTS" in str(raised.value)
    assert token_server.token_requests == 0 and token_server.grants == []  # the password never left


def test_the_realm_host_once_listed_is_used(token_registry, token_server):
    realm_host = token_server.url.split("://", 1)[1].split("/", 1)[0]
    with RegistryClient(token_registry.host, Credentials.from_user_pass(*token_registry.credentials),
                        egress=EgressPolicy([token_registry.host, realm_host])) as client:
        assert client.list_tags("egress/none-such") == []


def test_a_plain_registry_off_the_list_gets_no_request(registry):
    with RegistryClient(registry.host, egress=EgressPolicy(["other.example.com"])) as client, \
            pytest.raises(EgressDeniedError):
        client.check_access()


@pytest.mark.parametrize("body", [
    b"<html><body>internal build server 10.1.2.3 secret=hunter2 stack trace ...</body></html>",
    json.dumps({"errors": [{"code": "<script>", "message": "x"}], "debug": "secret=hunter2"}).encode(),
    json.dumps({"message": "internal path /srv/secret/hunter2"}).encode(),
])
def test_remote_error_bodies_are_not_echoed(fake_registry, body):
    fake_registry.fail_next("/v2/app/manifests/", 400, body=body)
    with RegistryClient(fake_registry.host) as client, pytest.raises(RegistryError) as raised:
        client.get_manifest("app", "v1")
    message = str(raised.value)
    assert "hunter2" not in message and "10.1.2.3" not in message and "<" not in message
    assert "400" in message


def test_registry_error_codes_are_kept_and_sanitised(fake_registry):
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown\n\x1b[31m" + "x" * 500}]})
    fake_registry.fail_next("/v2/app/manifests/", 404, body=body.encode())
    with RegistryClient(fake_registry.host) as client, pytest.raises(RegistryError) as raised:
        client.get_manifest("app", "v1")
    message = str(raised.value)
    assert "MANIFEST_UNKNOWN: manifest unknown" in message
    assert "\x1b" not in message and "\n" not in message and "x" * 101 not in message
