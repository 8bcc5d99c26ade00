"""Secrets never shown by the CLI: a SAS in an archive URL is redacted in every line and JSON field
Ferry prints, and a password can come from stdin instead of the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw


@pytest.fixture
def sas_container(azurite):
    name = f"sas{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string("acct1")).create_container(name)
    sas = generate_container_sas("acct1", name, account_key=azurite.accounts["acct1"],
                                 permission=ContainerSasPermissions(read=True, write=True, create=True, delete=True,
                                                                    list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    signature = next(p.split("=", 1)[1] for p in sas.split("&") if p.startswith("sig="))
    return f"{azurite.blob_endpoint('acct1')}/{name}", sas, signature


@pytest.mark.attack
@pytest.mark.parametrize("as_json", [False, True])
def test_sas_urls_are_redacted_in_export_and_import_output(registry, registry_b, content, sas_container, capsys,
                                                           monkeypatch, as_json):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    container, sas, signature = sas_container
    repo = f"sas/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["helm"], tag="v1")
    url = f"{container}/x.tar?{sas}"
    flags = ["--json"] if as_json else []
    exported = run_ferry(capsys, "export", f"{registry.host}/{repo}:v1", "--to", url, *flags)
    assert exported.code == 0, exported.err
    imported = run_ferry(capsys, "import", url, "--to", registry_b.host, "--delete-source-on-success", *flags)
    assert imported.code == 0, imported.err
    printed = exported.out + exported.err + imported.out + imported.err
    assert signature not in printed and signature.replace("%2B", "+") not in printed
    assert "sig=REDACTED" in printed  # the archive and the deleted source are still named
    if as_json:
        assert json.loads(imported.out)["deleted_source"].endswith("sig=REDACTED")
    assert skopeo_raw(registry_b.host, repo, "v1") == content["helm"].raw


@pytest.mark.attack
def test_password_from_stdin_keeps_it_out_of_the_command_line(registry, auth_registry, content, capsys, monkeypatch):
    repo = f"stdin/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["docker"], tag="v1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(auth_registry.password + "\n"))
    args = ["copy", f"{registry.host}/{repo}:v1", f"{auth_registry.host}/{repo}:v1",
            "--dest-creds", auth_registry.username, "--dest-password-stdin"]
    result = run_ferry(capsys, *args)
    assert result.code == 0, result.err
    assert auth_registry.password not in " ".join(args)
    assert skopeo_raw(auth_registry.host, repo, "v1", auth_registry.credentials) == content["docker"].raw


@pytest.mark.bad_input
@pytest.mark.parametrize(("args", "needle"), [
    (["--dest-creds", "user:pass", "--dest-password-stdin"], "only the user name"),
    (["--dest-password-stdin"], "only the user name"),
    (["-u", "u", "--password-stdin", "--dest-creds", "v", "--dest-password-stdin"], "one password"),
])
def test_password_stdin_misuse_is_a_usage_error(registry, capsys, monkeypatch, args, needle):
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret\n"))
    result = run_ferry(capsys, "copy", f"{registry.host}/x:1", f"{registry.host}/y:1", *args)
    assert result.code == 2 and needle in result.err


@pytest.mark.bad_input
def test_empty_stdin_is_refused_before_any_request(registry, capsys):
    completed = subprocess.run([sys.executable, "-m", "cli", "copy", f"{registry.host}/x:1", f"{registry.host}/y:1",
                                "-u", "someone", "--password-stdin"], input="", capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 2 and "no password on stdin" in completed.stderr
