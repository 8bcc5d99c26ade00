"""JobSpec: the JSON round trip of every endpoint and selection kind, errors naming the field, and
the combinations a job refuses."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from ferry.errors import UsageError
from ferry.jobs.spec import (
    ArchiveContents,
    ArchiveEndpoint,
    Artifacts,
    Endpoint,
    ExportRefs,
    JobOptions,
    JobSpec,
    LayoutEndpoint,
    RegistryEndpoint,
    RepositoryTags,
    Selection,
    StorageAccess,
)
from ferry.plan import CopyRequest

DIGEST = "sha256:" + "a" * 64
BLOB = "https://acct.blob.core.windows.net/transfer/app.tar"
VAULT = "https://vault.vault.azure.net/secrets/sas"

REGISTRIES: list[Endpoint] = [
    RegistryEndpoint("registry.example.com"),
    RegistryEndpoint("localhost:5000", credentials_ref="credentials/exportPipelines/p1", insecure=True),
    RegistryEndpoint("myacr.azurecr.io", azure_ad=True),
]
LAYOUTS: list[Endpoint] = [LayoutEndpoint("/media/usb/layout")]
ARCHIVE_SOURCES: list[Endpoint] = [
    ArchiveEndpoint("/media/usb/ferry.tar"),
    ArchiveEndpoint(BLOB, StorageAccess("SasToken", VAULT), delete_on_success=True),
    ArchiveEndpoint(BLOB, StorageAccess("ManagedIdentity")),
]
ARCHIVE_DESTINATIONS: list[Endpoint] = [
    ArchiveEndpoint("/media/usb/ferry.tar", overwrite=True, baseline="/media/usb/catalog.json"),
    ArchiveEndpoint(BLOB, StorageAccess("ConnectionString")),
    ArchiveEndpoint(BLOB, StorageAccess("SasToken", VAULT), overwrite=True, baseline=BLOB.replace("app", "old")),
]
SELECTIONS: list[Selection] = [
    Artifacts((CopyRequest("app", "v1", "mirror/app", ("v1", "stable")), CopyRequest("app", DIGEST, "app"))),
    ExportRefs(("app", "app:v1", "app:v1.*", f"lib/tool@{DIGEST}")),
    RepositoryTags("app", "mirror/app"),
    RepositoryTags("app", "mirror/app", r"v1\.[0-9]+", keep_tags=False),
    ArchiveContents(),
    ArchiveContents("mirror", (("library/nginx", "web/nginx"), ("a", "b"))),
]
OPTIONS = [
    JobOptions(),
    JobOptions(overwrite_tags=True, continue_on_errors=True, include_referrers=False, include_foreign_layers=True,
               platforms=("linux/amd64", "linux/arm64/v8"), parallelism=3, max_artifacts=7,
               batch_max_bytes=1024, batch_max_blobs=2),
]


def valid_combination(source: Any, destination: Any, selection: Any) -> bool:
    """The rules of JobSpec, written independently of it."""
    if isinstance(source, ArchiveEndpoint) and (source.overwrite or source.baseline):
        return False
    if isinstance(destination, ArchiveEndpoint) and destination.delete_on_success:
        return False
    if isinstance(selection, ArchiveContents):
        return isinstance(source, ArchiveEndpoint)
    return not (isinstance(selection, ExportRefs | RepositoryTags) and isinstance(source, ArchiveEndpoint))


def keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in keys(v)}
    return set()


def leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in leaves(v)]
    if isinstance(data, list):
        return [leaf for v in data for leaf in leaves(v)]
    return [data]


def minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"source": {"kind": "registry", "registry": "registry.example.com"},
                            "destination": {"kind": "archive", "url": "/tmp/a.tar"},
                            "select": [{"kind": "refs", "refs": ["app:v1"]}]}
    data.update(copy.deepcopy(changes))
    return data


# --------------------------------------------------------------------------- round trip


def test_round_trip_over_every_combination() -> None:
    endpoints = REGISTRIES + LAYOUTS + ARCHIVE_SOURCES + ARCHIVE_DESTINATIONS
    checked = refused = 0
    for source, destination, selection, options in itertools.product(endpoints, endpoints, SELECTIONS, OPTIONS):
        if not valid_combination(source, destination, selection):
            with pytest.raises(UsageError):
                JobSpec(source, destination, (selection,), options)
            refused += 1
            continue
        spec = JobSpec(source, destination, (selection,), options)
        data = json.loads(json.dumps(spec.to_json()))  # what a Durable history holds
        assert JobSpec.from_json(data) == spec, (source, destination, selection)
        assert JobSpec.from_json(data).to_json() == data
        assert all("_" not in key for key in keys(data)), sorted(keys(data))
        checked += 1
    assert checked > 500 and refused > 100  # both sides of the rules were exercised


def test_round_trip_of_several_selections_in_order() -> None:
    spec = JobSpec(REGISTRIES[0], LAYOUTS[0], tuple(s for s in SELECTIONS if not isinstance(s, ArchiveContents)))
    again = JobSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again.select == spec.select
    assert [s["kind"] for s in spec.to_json()["select"]] == ["artifacts", "refs", "tags", "tags"]


def test_json_shape_is_camel_case_with_kinds() -> None:
    spec = JobSpec(RegistryEndpoint("r.io", credentials_ref="c/x", azure_ad=True),
                   ArchiveEndpoint(BLOB, StorageAccess("SasToken", VAULT), overwrite=True),
                   (RepositoryTags("a", "b", "v.*", keep_tags=False),), JobOptions(continue_on_errors=True))
    data = spec.to_json()
    assert data["source"] == {"kind": "registry", "registry": "r.io", "credentialsRef": "c/x", "insecure": False,
                              "azureAd": True}
    assert data["destination"]["storage"] == {"mode": "SasToken", "keyVaultUri": VAULT}
    assert data["select"] == [{"kind": "tags", "sourceRepository": "a", "targetRepository": "b", "pattern": "v.*",
                               "keepTags": False}]
    assert data["options"]["continueOnErrors"] is True and data["options"]["maxArtifacts"] == 10_000


def test_from_json_fills_defaults() -> None:
    spec = JobSpec.from_json(minimal())
    assert spec.options == JobOptions()
    assert spec.destination == ArchiveEndpoint("/tmp/a.tar")
    assert spec.select == (ExportRefs(("app:v1",)),)


@pytest.mark.parametrize("endpoint", ARCHIVE_SOURCES + ARCHIVE_DESTINATIONS + [
    ArchiveEndpoint("https://acct.blob.core.windows.net/c/x.tar", StorageAccess("Auto"))])
def test_archive_endpoint_json_holds_only_what_was_given(endpoint: ArchiveEndpoint, monkeypatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=acct;AccountKey=c2VjcmV0")
    monkeypatch.setenv("FERRY_STORAGE_CONNECTION_STRINGS", '["AccountName=acct;AccountKey=c2VjcmV0"]')
    source = LAYOUTS[0] if not endpoint.delete_on_success else endpoint
    destination = endpoint if source is not endpoint else REGISTRIES[0]
    selection = ArchiveContents() if source is endpoint else ExportRefs(("app",))
    data = JobSpec(source, destination, (selection,)).to_json()
    side = data["source"] if source is endpoint else data["destination"]
    given = {endpoint.url, endpoint.storage.mode, endpoint.storage.key_vault_uri, endpoint.overwrite,
             endpoint.baseline, endpoint.delete_on_success, "archive"}
    assert set(side) == {"kind", "url", "storage", "overwrite", "baseline", "deleteOnSuccess"}
    assert set(side["storage"]) == {"mode", "keyVaultUri"}
    assert all(leaf in given for leaf in leaves(side)), leaves(side)
    assert "AccountKey" not in json.dumps(data)


def test_archive_display_never_shows_a_sas() -> None:
    endpoint = ArchiveEndpoint(BLOB + "?sv=2022&sig=c2VjcmV0c2lnbmF0dXJl")
    assert "c2VjcmV0c2lnbmF0dXJl" not in endpoint.display
    assert endpoint.display.startswith(BLOB)


# --------------------------------------------------------------------------- from_json errors


@pytest.mark.parametrize(("data", "starts"), [
    (minimal(source={"kind": "ftp", "registry": "x"}), "job.source.kind:"),
    (minimal(destination={"url": "/a.tar"}), "job.destination.kind:"),
    (minimal(select=[{"kind": "everything"}]), "job.select[0].kind:"),
    (minimal(select=[{"kind": "refs", "refs": ["a"]}, {"refs": ["b"]}]), "job.select[1].kind:"),
    (minimal(source={"kind": "registry", "registry": "x", "password": "hunter2"}),
     "job.source: unknown field(s) password"),
    (minimal(destination={"kind": "archive", "url": "/a.tar", "storage": {"mode": "Auto", "sas": "x"}}),
     "job.destination.storage: unknown field(s) sas"),
    (minimal(destination={"kind": "archive", "url": "/a.tar", "storage": "Auto"}),
     "job.destination.storage: must be a JSON object"),
    (minimal(options={"parallelism": 2, "retries": 3}), "job.options: unknown field(s) retries"),
    (minimal(select=[{"kind": "artifacts", "requests": [{"sourceRepository": "a", "sourceReference": "v1",
                                                          "targetRepository": "a", "tags": ["v1"]}]}]),
     "job.select[0].requests[0]: unknown field(s) tags"),
    (minimal(select=[{"kind": "tags", "sourceRepository": "a", "targetRepository": "b", "regex": "x"}]),
     "job.select[0]: unknown field(s) regex"),
    ({**minimal(), "priority": 1}, "job: unknown field(s) priority"),
    ([minimal()], "job: must be a JSON object"),
])
def test_from_json_errors_start_with_the_path(data: Any, starts: str) -> None:
    with pytest.raises(UsageError) as caught:
        JobSpec.from_json(data)
    assert str(caught.value).startswith(starts), str(caught.value)


def test_the_password_of_an_unknown_field_is_not_echoed() -> None:
    with pytest.raises(UsageError) as caught:
        JobSpec.from_json(minimal(source={"kind": "registry", "registry": "x", "password": "hunter2"}))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("storage", "named"), [
    ({"mode": "SasToken"}, "keyVaultUri"),
    ({"mode": "SasToken", "keyVaultUri": ""}, "keyVaultUri"),
    ({"mode": "AccountKey"}, "AccountKey"),
])
def test_bad_storage_access_is_named(storage: dict[str, Any], named: str) -> None:
    with pytest.raises(UsageError, match=named):
        JobSpec.from_json(minimal(destination={"kind": "archive", "url": BLOB, "storage": storage}))


@pytest.mark.parametrize("name", ["parallelism", "maxArtifacts", "batchMaxBytes", "batchMaxBlobs"])
@pytest.mark.parametrize("value", [0, -1])
def test_options_below_one_are_named(name: str, value: int) -> None:
    with pytest.raises(UsageError, match=rf"^job\.options: {name} must be at least 1"):
        JobSpec.from_json(minimal(options={name: value}))


def test_bad_tag_pattern_is_refused() -> None:
    with pytest.raises(UsageError, match=r"tag pattern: '\(v1' is not a valid regular expression"):
        JobSpec.from_json(minimal(select=[{"kind": "tags", "sourceRepository": "a", "targetRepository": "a",
                                           "pattern": "(v1"}]))


@pytest.mark.parametrize("data", [
    minimal(select=[{"kind": "refs", "refs": "app:v1"}]),
    minimal(options={"platforms": "linux/amd64"}),
    minimal(select=[{"kind": "artifacts", "requests": [{"sourceRepository": "a", "sourceReference": "v1",
                                                        "targetRepository": "a", "targetTags": "v1"}]}]),
])
def test_a_string_where_a_list_belongs_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match=r"^job\."):
        JobSpec.from_json(data)


@pytest.mark.parametrize("data", [
    minimal(source={"kind": "registry"}),
    minimal(options={"parallelism": "eight"}),
    minimal(options={"parallelism": None}),
    minimal(source={"kind": "archive", "url": "/a.tar"}, select=[{"kind": "archive", "remap": [["a", "b", "c"]]}]),
])
def test_missing_or_mistyped_fields_are_usage_errors(data: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match=r"^job\."):
        JobSpec.from_json(data)


# --------------------------------------------------------------------------- combinations


@pytest.mark.parametrize(("source", "destination", "select", "message"), [
    (REGISTRIES[0], LAYOUTS[0], (), "selects nothing"),
    (REGISTRIES[0], ARCHIVE_DESTINATIONS[0], (ArchiveContents(),), "archive's contents"),
    (LAYOUTS[0], REGISTRIES[0], (ArchiveContents("p"),), "archive's contents"),
    (ARCHIVE_SOURCES[0], REGISTRIES[0], (ExportRefs(("a",)),), "selected by its contents"),
    (ARCHIVE_SOURCES[0], REGISTRIES[0], (ArchiveContents(), RepositoryTags("a", "a")), "selected by its contents"),
    (REGISTRIES[0], ArchiveEndpoint("/a.tar", delete_on_success=True), (ExportRefs(("a",)),), "delete on success"),
    (ArchiveEndpoint("/a.tar", overwrite=True), REGISTRIES[0], (ArchiveContents(),), "overwrite and baseline"),
    (ArchiveEndpoint("/a.tar", baseline="/b.tar"), REGISTRIES[0], (ArchiveContents(),), "overwrite and baseline"),
])
def test_invalid_combinations(source: Any, destination: Any, select: tuple[Any, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        JobSpec(source, destination, select)
    data = {"source": endpoint_json(source), "destination": endpoint_json(destination),
            "select": [selection_json(s) for s in select]}
    with pytest.raises(UsageError, match=message):
        JobSpec.from_json(data)


ANY = (Artifacts((CopyRequest("a", "v1", "a"),)),)


def endpoint_json(endpoint: Any) -> dict[str, Any]:
    """The JSON of ``endpoint``, taken from a job where it is valid (as a source unless it can't be)."""
    as_source = not (isinstance(endpoint, ArchiveEndpoint) and (endpoint.overwrite or endpoint.baseline))
    if as_source:
        return JobSpec(endpoint, LAYOUTS[0], ANY).to_json()["source"]
    return JobSpec(LAYOUTS[0], endpoint, ANY).to_json()["destination"]


def selection_json(selection: Any) -> dict[str, Any]:
    source = ARCHIVE_SOURCES[0] if isinstance(selection, ArchiveContents) else REGISTRIES[0]
    return JobSpec(source, LAYOUTS[0], (selection,)).to_json()["select"][0]


def test_exports_archive_and_copy_options() -> None:
    spec = JobSpec(REGISTRIES[0], ARCHIVE_DESTINATIONS[0], (ExportRefs(("a",)),),
                   JobOptions(platforms=("linux/amd64",), continue_on_errors=True, parallelism=3))
    assert spec.exports_archive
    assert not JobSpec(REGISTRIES[0], LAYOUTS[0], (ExportRefs(("a",)),)).exports_archive
    options = spec.options.copy_options()
    assert options.platforms == frozenset({"linux/amd64"}) and options.parallelism == 3
    assert options.all_or_nothing is False
    assert JobOptions().copy_options().all_or_nothing is True
    assert JobOptions().copy_options().platforms is None
