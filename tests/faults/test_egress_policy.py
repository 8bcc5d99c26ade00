"""The allow-list's rules, and a stored credential bound to its registry at run time."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from ferry.azure.claims import MemoryClaimStore
from ferry.egress import AZURE_PUBLIC, EgressDeniedError, EgressPolicy
from ferry.errors import CredentialError
from ferry.jobs.endpoints import (
    JobEnvironment,
    check_endpoint,
    open_job_source,
    registry_credentials,
    storage_auth,
)
from ferry.jobs.spec import ArchiveEndpoint, LayoutEndpoint, RegistryEndpoint, StorageAccess
from ferry.settings import Settings

pytestmark = [pytest.mark.attack, pytest.mark.usefixtures("no_network")]


@pytest.mark.parametrize(("host", "port", "allowed"), [
    ("myreg.azurecr.io", None, True),
    ("MyReg.AzureCR.io.", None, True),           # case and a trailing dot do not matter
    ("azurecr.io", None, False),                 # a wildcard needs a subdomain
    ("evil-azurecr.io", None, False),
    ("myreg.azurecr.io.evil.com", None, False),
    ("acct.blob.core.windows.net", 443, True),
    ("management.azure.com", None, True),
    ("169.254.169.254", None, False),            # metadata
    ("10.0.0.1", None, False),
    ("127.0.0.1", 5000, False),
    ("localhost", None, False),
    ("registry.internal", None, False),
])
def test_default_list_is_azure_public_endpoints(host, port, allowed):
    assert EgressPolicy.from_settings(Settings({})).allows(host, port) is allowed


def test_listed_patterns_replace_the_defaults_and_the_registry_is_always_in():
    listed = "srcacct.blob.core.windows.net, *.corp.example:5000"
    policy = EgressPolicy.from_settings(Settings({"FERRY_ALLOWED_HOSTS": listed, "FERRY_REGISTRY": "127.0.0.1:5001"}))
    assert policy.allows("srcacct.blob.core.windows.net")
    assert not policy.allows("other.blob.core.windows.net")   # the default wildcard is gone
    assert policy.allows("reg.corp.example", 5000) and not policy.allows("reg.corp.example", 5001)
    assert policy.allows("127.0.0.1", 5001) and not policy.allows("127.0.0.1", 5002)


def test_a_wildcard_never_matches_an_ip_or_localhost():
    policy = EgressPolicy(["*.1", "*.localhost", "*.0.0.1"])
    assert not any(policy.allows(h) for h in ("10.0.0.1", "127.0.0.1", "app.localhost", "169.254.169.1"))
    assert EgressPolicy(["10.0.0.1"]).allows("10.0.0.1")  # named exactly, it is allowed


def test_refusal_names_the_setting_and_the_field():
    with pytest.raises(EgressDeniedError, match=r"properties\.target\.uri.*FERRY_ALLOWED_HOSTS"):
        EgressPolicy(AZURE_PUBLIC).check_url("https://evil.example.com/c", "properties.target.uri")
    with pytest.raises(EgressDeniedError, match="https"):
        EgressPolicy(["*"]).check_url("http://acct.blob.core.windows.net/c", "target", https=True)


def test_star_is_open_and_bad_patterns_are_errors():
    assert EgressPolicy(["*"]).allows("169.254.169.254")
    with pytest.raises(Exception, match="FERRY_ALLOWED_HOSTS"):
        EgressPolicy(["*.", ""]).allows("x")


def test_job_endpoints_are_checked_before_opening(tmp_path):
    policy = EgressPolicy(AZURE_PUBLIC)
    for endpoint in (RegistryEndpoint("10.0.0.1:5000"), LayoutEndpoint(str(tmp_path)),
                     ArchiveEndpoint(str(tmp_path / "a.tar")),
                     ArchiveEndpoint("https://acct.blob.core.windows.net/c/a.tar",
                                     StorageAccess("SasToken", "https://169.254.169.254/secrets/x"))):
        with pytest.raises(EgressDeniedError):
            check_endpoint(endpoint, policy, "source")
    env = JobEnvironment(egress=policy)
    with ExitStack() as stack, pytest.raises(EgressDeniedError):
        open_job_source(RegistryEndpoint("registry.evil.example"), env, stack)
    check_endpoint(RegistryEndpoint("10.0.0.1:5000"), None, "source")  # the CLI: no policy, no refusal


def test_a_blob_copy_refuses_a_key_vault_off_the_list_before_reading_the_secret():
    """The blob copy activities reach storage through storage_auth alone: it checks the vault too."""
    env = JobEnvironment(egress=EgressPolicy(AZURE_PUBLIC))
    blob = "https://acct.blob.core.windows.net/exports/a.tar"
    with pytest.raises(EgressDeniedError, match="Key Vault secret"):
        storage_auth(blob, StorageAccess("SasToken", "https://169.254.169.254/secrets/sas"), env)
    assert storage_auth(blob, StorageAccess("SasToken", "https://kv.vault.azure.net/secrets/sas"), env) is not None


def test_a_claim_goes_only_to_the_registry_it_was_given_for():
    claims = MemoryClaimStore()
    claims.put_json("credentials/x", {"username": "u", "password": "p", "registry": "good.azurecr.io"})
    env = JobEnvironment(claims=claims)
    assert registry_credentials(RegistryEndpoint("good.azurecr.io", "credentials/x"), env).password == "p"
    with pytest.raises(CredentialError, match=r"good\.azurecr\.io"):
        registry_credentials(RegistryEndpoint("evil.azurecr.io", "credentials/x"), env)
    claims.put_json("credentials/old", {"username": "u", "password": "p"})  # unbound: refused too
    with pytest.raises(CredentialError):
        registry_credentials(RegistryEndpoint("good.azurecr.io", "credentials/old"), env)
