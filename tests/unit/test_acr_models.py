"""ACR bodies parsed once (pipelines, runs, importImage), turned into JobSpecs, and the run's response.

No Azurite: the models, the job builders and the response shaping are pure functions.
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ferry.errors import FerryError, UsageError
from ferry.jobs.phases import JobOutcome
from ferry.jobs.spec import (
    ArchiveContents,
    ArchiveEndpoint,
    Artifacts,
    ExportRefs,
    JobOptions,
    JobSpec,
    RegistryEndpoint,
    StorageAccess,
)
from ferry.plan import ArtifactResult, CopyReport, CopyRequest
from ferry.settings import Settings
from ferry.transfer.build import (
    export_job,
    image_import_handoff,
    image_import_job,
    import_job,
    pipeline_run_job,
)
from ferry.transfer.import_image import parse_import_image
from ferry.transfer.models import (
    EXPORT_OPTIONS,
    IMPORT_OPTIONS,
    ExportPipeline,
    ImportPipeline,
    PipelineRegistry,
    PipelineRun,
    parse_export_pipeline,
    parse_import_pipeline,
    parse_pipeline_run,
)
from ferry.transfer.response import RunState, handoff_result, run_location, run_response, run_result

DATA = Path(__file__).parent.parent / "data" / "acr"
REGISTRY = "registry.example.com:5000"
DIGEST = "sha256:" + "1" * 64
EXPORT_VAULT = "https://sourcevault.vault.azure.net/secrets/acrexportsas"
IMPORT_VAULT = "https://targetvault.vault.azure.net/secrets/acrimportsas"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def export_pipeline(body: dict[str, Any] | None = None, **kwargs: Any) -> ExportPipeline:
    return parse_export_pipeline("export-pipe", body or load("exportPipeline.json"),
                                 **{"default_registry": REGISTRY, **kwargs})


def import_pipeline(body: dict[str, Any] | None = None, **kwargs: Any) -> ImportPipeline:
    return parse_import_pipeline("import-pipe", body or load("importPipeline.json"),
                                 **{"default_registry": REGISTRY, **kwargs})


def run(name: str = "pipelineRun-export.json") -> PipelineRun:
    return parse_pipeline_run("run-00001", load(name))


def changed(name: str, path: str, value: Any) -> dict[str, Any]:
    """The body of file ``name`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    body = copy.deepcopy(load(name))
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return body


IMAGE_IMPORT: dict[str, Any] = {"source": {"registryUri": "docker.io", "sourceImage": "library/hello-world:latest",
                           "credentials": {"username": "puller", "password": "pull-secret-1"}},
                "targetTags": ["hello:v1", "other"], "untaggedTargetRepositories": ["untagged/repo"],
                "mode": "Force"}


def image_import(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(IMAGE_IMPORT)
    for key, value in changes.items():
        if key.startswith("source_"):
            body["source"][key.removeprefix("source_")] = value
        else:
            body[key] = value
    return body


# --------------------------------------------------------------------------- the real parameter files


def test_every_file_in_tests_data_acr_parses() -> None:
    parsers = {
        "Microsoft.ContainerRegistry/registries/exportPipelines": lambda b: export_pipeline(b),
        "Microsoft.ContainerRegistry/registries/importPipelines": lambda b: import_pipeline(b),
        "Microsoft.ContainerRegistry/registries/pipelineRuns": lambda b: parse_pipeline_run("run-00001", b),
    }
    files = sorted(DATA.glob("*.json"))
    assert len(files) >= 4
    for path in files:
        body = json.loads(path.read_text())
        assert body["type"] in parsers, f"{path.name}: no parser for {body['type']}"
        assert parsers[body["type"]](body) is not None


def test_export_pipeline_file() -> None:
    pipeline = export_pipeline()
    assert pipeline.target.uri == "https://sourcestorage.blob.core.windows.net/transfer"
    assert (pipeline.target.key_vault_uri, pipeline.target.storage_access_mode) == (EXPORT_VAULT, "SasToken")
    assert pipeline.options == ["OverwriteBlobs"] and pipeline.source.registry_uri == REGISTRY
    assert pipeline.properties() == {
        "target": {"type": "AzureStorageBlobContainer", "uri": pipeline.target.uri, "storageAccessMode": "SasToken",
                   "keyVaultUri": EXPORT_VAULT},
        "options": ["OverwriteBlobs"], "source": {"registryUri": REGISTRY}}


def test_import_pipeline_file() -> None:
    pipeline = import_pipeline()
    assert pipeline.source.uri == "https://targetstorage.blob.core.windows.net/transfer"
    assert pipeline.options == ["OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors"]
    assert pipeline.trigger_enabled and pipeline.repository_prefix == "" and pipeline.remap == {}
    assert pipeline.properties()["trigger"] == {"sourceTrigger": {"status": "Enabled"}}
    assert pipeline.properties()["target"] == {"registryUri": REGISTRY, "repositoryPrefix": "", "remap": {}}


def test_run_files() -> None:
    export = run("pipelineRun-export.json")
    assert (export.pipeline.kind, export.pipeline.name) == ("export", "PIPELINE")
    assert export.target_name == "export-2024-01.tar" and export.source_name is None
    assert export.artifacts == ["samples/hello-world:v1", "samples/nginx:v1", f"samples/alpine@{DIGEST}"]
    assert export.force_update_tag == "2024-01-15T10:00:00Z"
    export.check_kind("export")
    imported = run("pipelineRun-import.json")
    assert (imported.pipeline.kind, imported.source_name, imported.catalog_digest) == ("import", "export-2024-01.tar",
                                                                                       None)
    imported.check_kind("import")
    with pytest.raises(UsageError, match=r"^properties\.request\.target\.name: required"):
        imported.check_kind("export")
    with pytest.raises(UsageError, match=r"^properties\.request\.source\.name: required"):
        export.check_kind("import")


def test_pipeline_extensions_are_parsed() -> None:
    body = changed("importPipeline.json", "properties.target", {
        "registryUri": "https://acr.example.io/", "repositoryPrefix": "/mirror/", "remap": ["lib=tools/lib"]})
    body["properties"]["trigger"] = {"sourceTrigger": {"status": "disabled"}}
    body["properties"]["source"]["storageAccessMode"] = "connectionstring"
    del body["properties"]["source"]["keyVaultUri"]
    pipeline = import_pipeline(body)
    assert pipeline.target.registry_uri == "acr.example.io" and pipeline.repository_prefix == "mirror"
    assert pipeline.remap == {"lib": "tools/lib"} and not pipeline.trigger_enabled
    assert pipeline.source.storage_access_mode == "ConnectionString" and pipeline.source.key_vault_uri is None
    for remap in ({"lib": "tools/lib"}, [["lib", "tools/lib"]]):
        assert import_pipeline(changed("importPipeline.json", "properties.target", {"remap": remap})).remap == {
            "lib": "tools/lib"}


# --------------------------------------------------------------------------- errors start with the JSON path


EXPORT = "exportPipeline.json"
IMPORT = "importPipeline.json"
RUN = "pipelineRun-export.json"

BAD_BODIES: list[tuple[str, str, Any, str]] = [
    (EXPORT, "properties", ..., "properties"),
    (EXPORT, "properties", [], "properties"),
    (EXPORT, "properties.target", ..., "properties.target"),
    (EXPORT, "properties.target.type", "AzureFiles", "properties.target.type"),
    (EXPORT, "properties.target.uri", ..., "properties.target.uri"),
    (EXPORT, "properties.target.uri", "ftp://acct.blob.core.windows.net/c", "properties.target.uri"),
    (EXPORT, "properties.target.uri", "https://acct.blob.core.windows.net/", "properties.target.uri"),
    (EXPORT, "properties.target.uri", " https://a.blob.core.windows.net/c", "properties.target.uri"),
    (EXPORT, "properties.target.storageAccessMode", "AccountKey", "properties.target.storageAccessMode"),
    (EXPORT, "properties.target.keyVaultUri", ..., "properties.target.keyVaultUri"),
    (EXPORT, "properties.target.keyVaultUri", "http://v.vault.azure.net/secrets/s", "properties.target.keyVaultUri"),
    (EXPORT, "properties.target.keyVaultUri", "https://v.vault.azure.net/keys/s", "properties.target.keyVaultUri"),
    (EXPORT, "properties.options", "OverwriteBlobs", "properties.options"),
    (EXPORT, "properties.options", ["OverwriteBlobs", "OverwriteTags"], "properties.options[1]"),
    (EXPORT, "properties.source", "registry.example.com", "properties.source"),
    (EXPORT, "properties.source", {"registryUri": "not a host"}, "properties.source.registryUri"),
    (EXPORT, "properties.source", {"registryUri": "https://r.io/path"}, "properties.source.registryUri"),
    (EXPORT, "properties.source", {"registryUri": "r.io", "credentials": {"username": "u"}},
     "properties.source.credentials.password"),
    (EXPORT, "properties.source", {"registryUri": "r.io", "credentials": "u:p"}, "properties.source.credentials"),
    (EXPORT, "properties.source", {"registryUri": "r.io", "credentialsRef": "credentials/exportPipelines/other"},
     "properties.source.credentialsRef"),
    (IMPORT, "properties.source", ..., "properties.source"),
    (IMPORT, "properties.source.uri", 42, "properties.source.uri"),
    (IMPORT, "properties.trigger", "on", "properties.trigger"),
    (IMPORT, "properties.trigger.sourceTrigger", {"status": "Sometimes"}, "properties.trigger.sourceTrigger.status"),
    (IMPORT, "properties.options", ["Overwrite"], "properties.options[0]"),
    (IMPORT, "properties.target", {"repositoryPrefix": "Mirror"}, "properties.target.repositoryPrefix"),
    (IMPORT, "properties.target", {"repositoryPrefix": 7}, "properties.target.repositoryPrefix"),
    (IMPORT, "properties.target", {"remap": "a=b"}, "properties.target.remap"),
    (IMPORT, "properties.target", {"remap": ["a=b", "c"]}, "properties.target.remap[1]"),
    (IMPORT, "properties.target", {"remap": {"../x": "y"}}, "properties.target.remap[0]"),
    (RUN, "properties.request", ..., "properties.request"),
    (RUN, "properties.request.pipelineResourceId", ..., "properties.request.pipelineResourceId"),
    (RUN, "properties.request.pipelineResourceId", "registries/r/exportPipelines/p",
     "properties.request.pipelineResourceId"),
    (RUN, "properties.request.pipelineResourceId", "pipe", "properties.request.pipelineResourceId"),
    (RUN, "properties.request.artifacts", "samples/app:v1", "properties.request.artifacts"),
    (RUN, "properties.request.artifacts", ["a:v1", "A:v1"], "properties.request.artifacts[1]"),
    (RUN, "properties.request.artifacts", ["a@sha256:123"], "properties.request.artifacts[0]"),
    (RUN, "properties.request.target", "x.tar", "properties.request.target"),
    (RUN, "properties.request.target.type", "AzureStorageBlobContainer", "properties.request.target.type"),
    (RUN, "properties.request.target.name", "../x.tar", "properties.request.target.name"),
    (RUN, "properties.request.target.name", "/x.tar", "properties.request.target.name"),
    (RUN, "properties.request.target.name", "a//x.tar", "properties.request.target.name"),
    (RUN, "properties.request.target.name", "a\\x.tar", "properties.request.target.name"),
    (RUN, "properties.request.target.name", "x" * 1025, "properties.request.target.name"),
    (RUN, "properties.request.source", {"name": "./x.tar"}, "properties.request.source.name"),
    (RUN, "properties.request.catalogDigest", "sha256:abc", "properties.request.catalogDigest"),
    (RUN, "properties.forceUpdateTag", 5, "properties.forceUpdateTag"),
]


def parse_file_body(name: str, body: Any) -> Any:
    if name == EXPORT:
        return export_pipeline(body)
    if name == IMPORT:
        return import_pipeline(body)
    return parse_pipeline_run("run-00001", body)


@pytest.mark.parametrize(("name", "path", "value", "starts"), BAD_BODIES,
                         ids=[f"{p}={v!r}"[:60] for _, p, v, _ in BAD_BODIES])
def test_bad_field_names_its_path(name: str, path: str, value: Any, starts: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_file_body(name, changed(name, path, value))
    assert str(caught.value).startswith(starts + ": "), str(caught.value)


BAD_IMAGE_IMPORTS: list[tuple[Any, str]] = [
    (image_import(source=None), "source"),
    (image_import(source_registryUri=None), "source.registryUri"),
    (image_import(source_resourceId="/subscriptions/s/resourceGroups/g/providers/x/registries/r"), "source.resourceId"),
    (image_import(source_registryUri="https://r.io/v2/"), "source.registryUri"),
    (image_import(source_sourceImage=None), "source.sourceImage"),
    (image_import(source_sourceImage="Library/Hello"), "source.sourceImage"),
    (image_import(source_sourceImage="a:" + "t" * 600), "source.sourceImage"),
    (image_import(source_credentials={"username": "u", "password": ""}), "source.credentials.password"),
    (image_import(mode="Always"), "mode"),
    (image_import(targetTags="hello:v1"), "targetTags"),
    (image_import(targetTags=["ok:v1", f"x@{DIGEST}"]), "targetTags[1]"),
    (image_import(targetTags=["Bad:v1"]), "targetTags[0]"),
    (image_import(untaggedTargetRepositories=["ok", "../up"]), "untaggedTargetRepositories[1]"),
    ([IMAGE_IMPORT], "body"),
]


@pytest.mark.parametrize(("body", "starts"), BAD_IMAGE_IMPORTS, ids=[s for _, s in BAD_IMAGE_IMPORTS])
def test_bad_image_import_names_its_path(body: Any, starts: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_import_image(body)
    assert str(caught.value).startswith(starts + ": "), str(caught.value)


def test_at_least_fifteen_distinct_paths_are_covered() -> None:
    paths = {s for *_, s in BAD_BODIES} | {s for _, s in BAD_IMAGE_IMPORTS}
    assert len(paths) >= 15 + 15


# --------------------------------------------------------------------------- registries, credentials, names


def test_default_registry_only_when_registry_uri_is_absent() -> None:
    given = changed(EXPORT, "properties.source", {"registryUri": "given.example.com"})
    assert export_pipeline(given, default_registry="default.example.com").source.registry_uri == "given.example.com"
    assert export_pipeline(default_registry="default.example.com").source.registry_uri == "default.example.com"
    given = changed(IMPORT, "properties.target", {"registryUri": "given.example.com"})
    assert import_pipeline(given, default_registry="d.example.com").target.registry_uri == "given.example.com"
    assert import_pipeline(default_registry="d.example.com").target.registry_uri == "d.example.com"


@pytest.mark.parametrize("parse", [export_pipeline, import_pipeline])
def test_missing_registry_names_ferry_registry(parse: Any) -> None:
    side = "source" if parse is export_pipeline else "target"
    with pytest.raises(UsageError, match=rf"^properties\.{side}\.registryUri: required .*FERRY_REGISTRY"):
        parse(default_registry=None)
    with pytest.raises(UsageError, match=rf"^properties\.{side}\.registryUri: required .*FERRY_REGISTRY"):
        parse(default_registry="")


@pytest.mark.parametrize("kind", ["export", "import"])
def test_credentials_never_reach_properties(kind: str) -> None:
    side = "source" if kind == "export" else "target"
    name = EXPORT if kind == "export" else IMPORT
    body = changed(name, f"properties.{side}", {"registryUri": "r.io",
                                                 "credentials": {"username": "robot$x", "password": "pw-s3cret"}})
    pipeline = export_pipeline(body) if kind == "export" else import_pipeline(body)
    registry = registry_of(pipeline)
    assert registry.credentials is not None
    assert registry.credentials.to_claim("r.io") == {"username": "robot$x", "password": "pw-s3cret", "registry": "r.io"}
    stored = [json.dumps(pipeline.properties())]
    registry.credentials_ref = pipeline.credentials_claim  # as the API does once the claim is kept
    stored.append(json.dumps(pipeline.properties()))
    for text in stored:
        assert "pw-s3cret" not in text and "robot$x" not in text and "credentials\":" not in text
    assert pipeline.properties()[side]["credentialsRef"] == f"credentials/{pipeline.collection}/{pipeline.name}"
    assert "pw-s3cret" not in repr(pipeline)
    # a GET-then-PUT echoes our own claim name back, which is accepted
    echoed = changed(name, f"properties.{side}", pipeline.properties()[side])
    again = export_pipeline(echoed) if kind == "export" else import_pipeline(echoed)
    assert registry_of(again).credentials_ref == pipeline.credentials_claim


def registry_of(pipeline: ExportPipeline | ImportPipeline) -> PipelineRegistry:
    return pipeline.source if isinstance(pipeline, ExportPipeline) else pipeline.target


def test_image_import_credentials_are_kept_apart() -> None:
    params = parse_import_image(IMAGE_IMPORT)
    assert params.credentials is not None and params.credentials.password == "pull-secret-1"
    assert "pull-secret-1" not in repr(params)


@pytest.mark.parametrize("uri", [
    "https://acct.blob.core.windows.net/transfer?sv=2022-11-02&sig=abc",
    "https://acct.blob.core.windows.net/transfer?SIG=abc",
    "https://acct.blob.core.windows.net/transfer?sp=r&signature=abc",
])
@pytest.mark.parametrize("field", ["uri", "keyVaultUri"])
def test_urls_with_a_sas_are_refused(uri: str, field: str) -> None:
    value = uri if field == "uri" else "https://v.vault.azure.net/secrets/s?" + uri.split("?")[1]
    with pytest.raises(UsageError, match=rf"^properties\.target\.{field}: must not carry a SAS") as caught:
        export_pipeline(changed(EXPORT, f"properties.target.{field}", value))
    assert "abc" not in str(caught.value)


@pytest.mark.parametrize("name", ["ab/cdef", "abc/../d", "..abc", "abc..", "abcd", "a" * 51, "abc_def", "", "abc de"])
def test_bad_names_are_refused(name: str) -> None:
    for parse in (lambda: parse_export_pipeline(name, load(EXPORT), default_registry=REGISTRY),
                  lambda: parse_import_pipeline(name, load(IMPORT), default_registry=REGISTRY),
                  lambda: parse_pipeline_run(name, load(RUN))):
        with pytest.raises(UsageError, match=r"^name: .* must be 5 to 50 characters"):
            parse()
    with pytest.raises(UsageError, match=r"^properties\.request\.pipelineResourceId: "):
        parse_pipeline_run("run-00001", changed(RUN, "properties.request.pipelineResourceId", name or None))


@pytest.mark.parametrize("name", ["abcde", "a" * 50, "Run-2024-01-15", "0-0-0"])
def test_good_names_are_accepted(name: str) -> None:
    assert parse_export_pipeline(name, load(EXPORT), default_registry=REGISTRY).name == name
    assert parse_pipeline_run(name, load(RUN)).name == name
    assert parse_pipeline_run("run-00001", changed(RUN, "properties.request.pipelineResourceId",
                                                   name)).pipeline.name == name


@pytest.mark.parametrize("parse", [
    lambda: parse_export_pipeline("abcde\n", load(EXPORT), default_registry=REGISTRY),
    pytest.param(lambda: parse_pipeline_run("run-00001", changed(RUN, "properties.request.artifacts",
                                                                 ["samples/app:v1\n"]))),
    pytest.param(lambda: parse_import_image(image_import(untaggedTargetRepositories=["repo\n"]))),
], ids=["pipeline-name", "run-artifact", "untagged-repository"])
def test_a_trailing_newline_is_refused(parse: Any) -> None:
    with pytest.raises(UsageError):
        parse()


def test_request_hash_is_equal_for_equal_requests() -> None:
    body = load(RUN)
    reordered = json.loads(json.dumps(body, sort_keys=True))
    reordered["properties"]["request"] = dict(reversed(list(body["properties"]["request"].items())))
    first = parse_pipeline_run("run-00001", body)
    assert first.request_hash == parse_pipeline_run("run-00002", reordered).request_hash
    assert len(first.request_hash) == 64
    other = changed(RUN, "properties.request.artifacts", ["samples/hello-world:v2"])
    assert parse_pipeline_run("run-00001", other).request_hash != first.request_hash


def test_run_properties_keep_the_request() -> None:
    parsed = run()
    assert parsed.properties() == {"request": load(RUN)["properties"]["request"],
                                   "forceUpdateTag": "2024-01-15T10:00:00Z"}
    no_tag = parse_pipeline_run("run-00001", changed(RUN, "properties.forceUpdateTag", ...))
    assert "forceUpdateTag" not in no_tag.properties()


# --------------------------------------------------------------------------- ACR models → JobSpec


SETTINGS = Settings({"FERRY_MAX_ARTIFACTS": "50", "FERRY_INSECURE_REGISTRIES": f"other.example, {REGISTRY}",
                     "FERRY_REGISTRY": "https://target.example.com/"})


def test_export_job_from_the_files() -> None:
    spec = export_job(export_pipeline(), run(), SETTINGS)
    assert spec == JobSpec(
        source=RegistryEndpoint(REGISTRY, None, insecure=True),
        destination=ArchiveEndpoint("https://sourcestorage.blob.core.windows.net/transfer/export-2024-01.tar",
                                    StorageAccess("SasToken", EXPORT_VAULT), overwrite=True),
        select=(ExportRefs(("samples/hello-world:v1", "samples/nginx:v1", f"samples/alpine@{DIGEST}")),),
        options=JobOptions(max_artifacts=50))
    assert pipeline_run_job(export_pipeline(), run(), SETTINGS) == spec
    assert JobSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_import_job_from_the_files() -> None:
    pipeline = import_pipeline(changed(IMPORT, "properties.target", {
        "registryUri": "secure.example.com", "repositoryPrefix": "mirror", "remap": {"z": "y", "a": "b"}}))
    spec = import_job(pipeline, "export-2024-01.tar", SETTINGS)
    assert spec == JobSpec(
        source=ArchiveEndpoint("https://targetstorage.blob.core.windows.net/transfer/export-2024-01.tar",
                               StorageAccess("SasToken", IMPORT_VAULT), delete_on_success=True),
        destination=RegistryEndpoint("secure.example.com", None, insecure=False),
        select=(ArchiveContents("mirror", (("a", "b"), ("z", "y"))),),
        options=JobOptions(overwrite_tags=True, continue_on_errors=True, max_artifacts=50))
    assert pipeline_run_job(pipeline, run("pipelineRun-import.json"), SETTINGS) == spec


def subsets(options: tuple[str, ...]) -> list[list[str]]:
    return [list(c) for n in range(len(options) + 1) for c in itertools.combinations(options, n)]


@pytest.mark.parametrize("options", subsets(EXPORT_OPTIONS))
def test_export_options_mapping(options: list[str]) -> None:
    spec = export_job(export_pipeline(changed(EXPORT, "properties.options", options)), run(), Settings())
    assert isinstance(spec.destination, ArchiveEndpoint)
    assert spec.destination.overwrite is ("OverwriteBlobs" in options)
    assert spec.options.continue_on_errors is ("ContinueOnErrors" in options)
    assert spec.options.overwrite_tags is False and spec.options.max_artifacts == 10_000
    assert spec.source == RegistryEndpoint(REGISTRY)


@pytest.mark.parametrize("options", subsets(IMPORT_OPTIONS))
def test_import_options_mapping(options: list[str]) -> None:
    spec = import_job(import_pipeline(changed(IMPORT, "properties.options", options)), "b.tar", SETTINGS)
    assert isinstance(spec.source, ArchiveEndpoint)
    assert spec.source.delete_on_success is ("DeleteSourceBlobOnSuccess" in options)
    assert spec.options.overwrite_tags is ("OverwriteTags" in options)
    assert spec.options.continue_on_errors is ("ContinueOnErrors" in options)
    assert spec.destination == RegistryEndpoint(REGISTRY, insecure=True)


def test_credentials_ref_and_storage_mode_reach_the_job() -> None:
    pipeline = export_pipeline(changed(EXPORT, "properties.target", {
        "uri": "https://acct.blob.core.windows.net/c/", "storageAccessMode": "ManagedIdentity"}))
    pipeline.source.credentials_ref = pipeline.credentials_claim
    spec = export_job(pipeline, run(), Settings())
    assert spec.source == RegistryEndpoint(REGISTRY, "credentials/exportPipelines/export-pipe")
    assert spec.destination == ArchiveEndpoint("https://acct.blob.core.windows.net/c/export-2024-01.tar",
                                               StorageAccess("ManagedIdentity"), overwrite=True)


def test_a_container_url_with_a_query_never_yields_a_broken_blob_url() -> None:
    body = changed(EXPORT, "properties.target.uri", "https://acct.blob.core.windows.net/transfer?restype=container")
    try:
        pipeline = export_pipeline(body)
    except UsageError as exc:  # refusing it is as good as handling it
        assert str(exc).startswith("properties.target.uri: ")
        return
    destination = export_job(pipeline, run(), Settings()).destination
    assert isinstance(destination, ArchiveEndpoint)
    assert urlsplit(destination.url).path == "/transfer/export-2024-01.tar", destination.url


def test_run_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^properties\.request\.target\.name"):
        pipeline_run_job(export_pipeline(), run("pipelineRun-import.json"), SETTINGS)
    with pytest.raises(UsageError, match=r"^properties\.request\.source\.name"):
        pipeline_run_job(import_pipeline(), run(), SETTINGS)


def test_image_import_job() -> None:
    spec = image_import_job(parse_import_image(IMAGE_IMPORT), "docker.io", "credentials/importImage/x", SETTINGS)
    assert spec == JobSpec(
        source=RegistryEndpoint("docker.io", "credentials/importImage/x"),
        destination=RegistryEndpoint("target.example.com"),
        select=(Artifacts((CopyRequest("library/hello-world", "latest", "hello", ("v1",)),
                           CopyRequest("library/hello-world", "latest", "other", ("latest",)),
                           CopyRequest("library/hello-world", "latest", "untagged/repo", ()))),),
        options=JobOptions(overwrite_tags=True, max_artifacts=50))


def test_image_import_by_digest_without_targets() -> None:
    params = parse_import_image({"source": {"registryUri": REGISTRY, "sourceImage": f"team/app@{DIGEST}"}})
    settings = Settings({"FERRY_REGISTRY": REGISTRY, "FERRY_INSECURE_REGISTRIES": REGISTRY})
    spec = image_import_job(params, REGISTRY, None, settings)
    assert spec.select == (Artifacts((CopyRequest("team/app", DIGEST, "team/app", ()),)),)
    assert spec.source == spec.destination == RegistryEndpoint(REGISTRY, insecure=True)
    assert spec.options.overwrite_tags is False


def test_image_import_without_ferry_registry() -> None:
    with pytest.raises(FerryError, match="FERRY_REGISTRY"):
        image_import_job(parse_import_image(IMAGE_IMPORT), "docker.io", None, Settings())


def test_image_import_handoff() -> None:
    params = parse_import_image(image_import(source_registryUri=None, source_resourceId="/subscriptions/s/r"))
    handoff = image_import_handoff(params, "/subscriptions/t/acr", "credentials/x")
    assert (handoff.source_registry, handoff.source_resource_id, handoff.source_image) == (
        None, "/subscriptions/s/r", "library/hello-world:latest")
    assert handoff.target_tags == ("hello:v1", "other:latest") and handoff.mode == "Force"
    assert handoff.untagged_target_repositories == ("untagged/repo",) and handoff.credentials_ref == "credentials/x"
    assert handoff_result(handoff, ["hello:v1"]) == {
        "status": "Succeeded", "importedArtifacts": ["hello:v1"], "catalogDigest": None,
        "pipelineRunErrorMessage": None,
        "artifacts": [{"source": "/subscriptions/s/r/library/hello-world:latest", "target": "hello:v1",
                       "status": "copied"}]}


# --------------------------------------------------------------------------- the run's response


def outcome(*results: tuple[str, str | None]) -> JobOutcome:
    artifacts = [ArtifactResult(f"app:v{i}", f"mirror/app:v{i}", status=status, error=error)
                 for i, (status, error) in enumerate(results)]
    return JobOutcome(CopyReport(artifacts), catalog_digest=DIGEST)


def test_run_result_succeeded() -> None:
    result = run_result(outcome(("copied", None), ("copied", None)))
    assert result["status"] == "Succeeded" and result["pipelineRunErrorMessage"] is None
    assert result["importedArtifacts"] == ["mirror/app:v0", "mirror/app:v1"] and result["catalogDigest"] == DIGEST
    assert [a["status"] for a in result["artifacts"]] == ["copied", "copied"]


def test_run_result_failed_artifacts() -> None:
    result = run_result(outcome(("copied", None), ("failed", "denied at https://a.blob.core.windows.net/c?sig=k3y")))
    assert result["status"] == "Failed" and result["importedArtifacts"] == ["mirror/app:v0"]
    assert result["pipelineRunErrorMessage"] == "app:v1: denied at https://a.blob.core.windows.net/c?sig=REDACTED"


def test_run_result_of_a_run_that_ended_in_error() -> None:
    result = run_result(None, "token=abcdef rejected")
    assert result == {"status": "Failed", "importedArtifacts": [], "catalogDigest": None,
                      "pipelineRunErrorMessage": "token=REDACTED rejected", "artifacts": []}
    assert run_result(None)["pipelineRunErrorMessage"] == "the run failed"


CREATED = datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC)
UPDATED = datetime(2024, 1, 15, 10, 5, 30, 250000, tzinfo=UTC)


def test_run_location() -> None:
    assert run_location(export_pipeline(), run()) == {"target": {
        "type": "AzureStorageBlob", "uri": "https://sourcestorage.blob.core.windows.net/transfer/export-2024-01.tar",
        "keyVaultUri": EXPORT_VAULT}}
    body = changed(IMPORT, "properties.source", {"uri": "https://t.blob.core.windows.net/c",
                                                  "storageAccessMode": "ManagedIdentity"})
    assert run_location(import_pipeline(body), run("pipelineRun-import.json")) == {"source": {
        "type": "AzureStorageBlob", "uri": "https://t.blob.core.windows.net/c/export-2024-01.tar"}}


@pytest.mark.parametrize("runtime", ["Pending", "Running", "ContinuedAsNew", "Suspended"])
def test_response_while_running(runtime: str) -> None:
    location = run_location(export_pipeline(), run())
    response = run_response(RunState(runtime, {"percentage": 42.7}, None, CREATED, UPDATED), location)
    assert response["status"] == "Running" and response["progress"] == {"percentage": "42"}
    assert response["startTime"] == "2024-01-15T10:00:00.000000Z" and "finishTime" not in response
    assert response["target"] == location["target"] and response["pipelineRunErrorMessage"] is None


def test_response_when_completed() -> None:
    output = run_result(outcome(("copied", None)))
    response = run_response(RunState("Completed", {"percentage": 80}, output, CREATED, UPDATED),
                            {"source": {"type": "AzureStorageBlob", "uri": "u"}})
    assert response["status"] == "Succeeded" and response["progress"] == {"percentage": "100"}
    assert response["importedArtifacts"] == ["mirror/app:v0"] and response["catalogDigest"] == DIGEST
    assert response["finishTime"] == "2024-01-15T10:05:30.250000Z" and response["source"]["uri"] == "u"
    failed = run_result(outcome(("failed", "manifest unknown")))
    response = run_response(RunState("Completed", None, failed, CREATED, UPDATED), None)
    assert response["status"] == "Failed" and response["pipelineRunErrorMessage"] == "app:v0: manifest unknown"
    assert response["importedArtifacts"] == []


def test_response_when_the_orchestration_failed() -> None:
    failure = ("FerryError: archive unreadable at https://a.blob.core.windows.net/c/x?sig=s3cr3t\n"
               "Traceback (most recent call last):\n  File \"orchestrations/runs.py\", line 1\n")
    response = run_response(RunState("Failed", {"percentage": 10}, failure, CREATED, UPDATED), None)
    assert response["status"] == "Failed"
    assert response["pipelineRunErrorMessage"] == (
        "FerryError: archive unreadable at https://a.blob.core.windows.net/c/x?sig=REDACTED")
    assert "Traceback" not in json.dumps(response) and response["progress"] == {"percentage": "10"}
    assert run_response(RunState("Failed"), None)["pipelineRunErrorMessage"] == "the orchestration failed"


@pytest.mark.parametrize("runtime", ["Terminated", "Canceled"])
def test_response_when_canceled(runtime: str) -> None:
    response = run_response(RunState(runtime, None, None, CREATED, UPDATED), None)
    assert (response["status"], response["pipelineRunErrorMessage"]) == ("Canceled", "the run was canceled")
    assert "finishTime" in response and "progress" not in response


def test_response_before_start_and_on_a_start_error() -> None:
    location = {"target": {"type": "AzureStorageBlob", "uri": "u"}}
    assert run_response(None, location) == {"status": "Unknown", "importedArtifacts": [], "catalogDigest": None,
                                            "pipelineRunErrorMessage": None, "artifacts": [], **location}
    started = run_response(None, location, start_error="password=hunter2 rejected")
    assert started["status"] == "Failed" and started["pipelineRunErrorMessage"] == "password=REDACTED rejected"
