"""Bad input to the CLI ends in a clear error naming the thing (exit 2), never a traceback; a
repository without tags among several is reported and skipped, not fatal."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import content as c
from tests.helpers import run_ferry, skopeo_raw

pytestmark = pytest.mark.bad_input


@pytest.fixture
def seeded(registry, content):
    repo = f"bad/{uuid.uuid4().hex[:8]}"
    c.push(registry.url, repo, content["docker"], tag="v1")
    return repo


@pytest.mark.parametrize(("target", "needle"), [
    ("/proc/x.tar", "cannot write archive /proc/x.tar"),
    ("/proc/nodir/sub/x.tar", "cannot write archive /proc/nodir/sub/x.tar"),
])
def test_an_archive_that_cannot_be_written_is_named(registry, seeded, capsys, target, needle):
    result = run_ferry(capsys, "export", f"{registry.host}/{seeded}:v1", "--to", target)
    assert result.code == 2 and needle in result.err and "Traceback" not in result.err


def test_a_layout_that_cannot_be_created_is_named(registry, seeded, capsys):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:v1", "oci:/proc/foo/bar")
    assert result.code == 2 and "cannot create OCI layout oci:/proc/foo/bar" in result.err


@pytest.mark.parametrize("reference", ["bad/a\nb:1", "bad/app:v1\n", "bad/ÄPP:v1", "bad/app:tag\x00"])
def test_a_reference_with_control_or_foreign_characters_is_refused(registry, capsys, reference):
    result = run_ferry(capsys, "copy", f"{registry.host}/{reference}", f"{registry.host}/ok/app:v1")
    assert result.code == 2 and "Traceback" not in result.err


@pytest.mark.parametrize("platform", ["bogus", "linux", "linux/amd64/v8/extra", "Linux/AMD64"])
def test_a_malformed_platform_is_refused_not_ignored(registry, seeded, capsys, platform):
    result = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:v1", f"{registry.host}/{seeded}:copy",
                       "--platform", platform)
    assert result.code == 2 and f"platform {platform!r}" in result.err


def test_a_tagless_repository_among_several_is_skipped_and_reported(registry, registry_b, seeded, capsys):
    empty = f"bad/empty{uuid.uuid4().hex[:6]}"
    result = run_ferry(capsys, "copy", f"{registry.host}/{empty}", f"{registry.host}/{seeded}", registry_b.host,
                       "--all-tags")
    assert result.code == 1
    assert f"SKIPPED no tag of {registry.host}/{empty}" in result.out
    assert skopeo_raw(registry_b.host, seeded, "v1")  # the other repository was copied


def test_a_single_tagless_repository_is_an_error(registry, registry_b, capsys):
    empty = f"bad/empty{uuid.uuid4().hex[:6]}"
    result = run_ferry(capsys, "copy", f"{registry.host}/{empty}", registry_b.host, "--all-tags")
    assert result.code == 2 and empty in result.err


def test_different_reasons_exit_1_one_reason_exits_with_its_code(registry, registry_b, seeded, content, capsys):
    c.push(registry_b.url, seeded, content["helm"], tag="v1")  # the target tag points elsewhere: a conflict
    conflict = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:v1", f"{registry_b.host}/{seeded}:v1")
    assert conflict.code == 7
    missing = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:nope", f"{registry_b.host}/{seeded}:other")
    assert missing.code == 5
    # Several artifacts failing for different reasons: 1.
    mixed = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:v1", f"{registry.host}/{seeded}:nope",
                      registry_b.host)
    assert mixed.code == 1 and "nope" in mixed.out


def test_wrong_credentials_exit_4_on_import_as_on_copy(registry, auth_registry, seeded, tmp_path, capsys):
    archive = tmp_path / "creds.tar"
    assert run_ferry(capsys, "export", f"{registry.host}/{seeded}:v1", "--to", str(archive)).code == 0
    imported = run_ferry(capsys, "import", str(archive), "--to", auth_registry.host, "--dest-creds", "ferry:wrong")
    copied = run_ferry(capsys, "copy", f"{registry.host}/{seeded}:v1", f"{auth_registry.host}/{seeded}:v1",
                       "--dest-creds", "ferry:wrong")
    assert imported.code == copied.code == 4
    assert "wrong" not in imported.err + copied.err
