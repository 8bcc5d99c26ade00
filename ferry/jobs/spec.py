"""JobSpec: one copy job, typed, with a JSON round trip.

Every way into the engine builds one of these: ``ferry copy/export/import`` from their
arguments, an ACR PipelineRun or importImage from its parsed model (:mod:`ferry.transfer.build`).
Its JSON is what Durable orchestrations carry, so it never holds a secret: registry credentials
are named by a claim (``credentials_ref``, see :mod:`ferry.azure.claims`), storage is reached
by its access mode, and the API refuses blob URLs that carry a SAS (only the CLI, which never
persists a spec, may pass one in a URL).

A job is a *source* and a *destination* endpoint, a *selection* of what to copy, and *options*::

    {"source": {"kind": "registry", "registry": "HOST", "credentialsRef": null, ...},
     "destination": {"kind": "archive", "url": "...", "storage": {"mode": "SasToken", ...}, ...},
     "select": [{"kind": "refs", "refs": ["repo:v1", "repo:*"]}],
     "options": {"overwriteTags": false, "continueOnErrors": false, ...}}

May be imported by anything in ``ferry/jobs``, ``ferry/transfer``, ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ferry.errors import UsageError
from ferry.patterns import TagPattern
from ferry.plan import CopyOptions, CopyRequest, ProgressListener
from ferry.redact import redact
from ferry.settings import DEFAULT_MAX_ARTIFACTS

StorageMode = Literal["SasToken", "ManagedIdentity", "ConnectionString", "Auto"]
STORAGE_MODES: tuple[str, ...] = ("SasToken", "ManagedIdentity", "ConnectionString", "Auto")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _to_json(obj: Any) -> Any:
    """camelCase JSON of a spec dataclass (with its ``kind``), tuples as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data = {} if not hasattr(obj, "kind") else {"kind": obj.kind}
        data.update({_camel(f.name): _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)})
        return data
    if isinstance(obj, tuple | list):
        return [_to_json(v) for v in obj]
    return obj


def _list(value: Any, path: str) -> list[Any]:
    """A JSON list (None: empty); a string or an object where a list belongs is an error naming ``path``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UsageError(f"{path}: must be a JSON list")
    return value


def _fields(cls: type, data: Any, path: str) -> dict[str, Any]:
    """Constructor arguments for ``cls`` from camelCase ``data``; unknown keys are errors naming ``path``."""
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a JSON object")
    names = {_camel(f.name): f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names) - {"kind"}
    if unknown:
        raise UsageError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    return {names[key]: value for key, value in data.items() if key != "kind"}


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class StorageAccess:
    """How a blob is reached, as ACR's ``storageAccessMode``: ``SasToken`` (the SAS in the Key Vault
    secret ``key_vault_uri``), ``ManagedIdentity``, ``ConnectionString`` (from app settings), or the
    CLI's ``Auto`` (a SAS in the URL, else a matching connection string, else DefaultAzureCredential)."""

    mode: StorageMode = "Auto"
    key_vault_uri: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in STORAGE_MODES:
            raise UsageError(f"storage mode {self.mode!r} is not one of {', '.join(STORAGE_MODES)}")
        if self.mode == "SasToken" and not self.key_vault_uri:
            raise UsageError("storage mode SasToken needs keyVaultUri (the Key Vault secret holding the SAS)")


@dataclass(frozen=True)
class RegistryEndpoint:
    """A registry ``host[:port]``. Credentials come from the claim ``credentials_ref`` if set, else
    (``azure_ad``) Azure AD through ACR's exchange, else docker's config, else anonymous."""

    kind: ClassVar[str] = "registry"
    registry: str
    credentials_ref: str | None = None
    insecure: bool = False
    azure_ad: bool = False

    @property
    def display(self) -> str:
        return self.registry


@dataclass(frozen=True)
class LayoutEndpoint:
    """An OCI image layout directory."""

    kind: ClassVar[str] = "layout"
    path: str

    @property
    def display(self) -> str:
        return f"oci:{self.path}"


@dataclass(frozen=True)
class ArchiveEndpoint:
    """A transfer archive: a file path or a blob URL.

    As a destination, ``overwrite`` (OverwriteBlobs) replaces an existing archive and ``baseline``
    (an earlier archive, or the catalog ``ferry inspect --json`` wrote) names blobs to leave out.
    As a source, ``delete_on_success`` (DeleteSourceBlobOnSuccess) deletes the archive once every
    artifact is verified in the target.
    """

    kind: ClassVar[str] = "archive"
    url: str
    storage: StorageAccess = field(default_factory=StorageAccess)
    overwrite: bool = False
    baseline: str | None = None
    delete_on_success: bool = False

    @property
    def display(self) -> str:
        return redact(self.url)


Endpoint = RegistryEndpoint | LayoutEndpoint | ArchiveEndpoint
_ENDPOINTS: dict[str, type[RegistryEndpoint] | type[LayoutEndpoint] | type[ArchiveEndpoint]] = {
    cls.kind: cls for cls in (RegistryEndpoint, LayoutEndpoint, ArchiveEndpoint)}


def endpoint_from_json(data: Any, path: str) -> Endpoint:
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _ENDPOINTS:
        raise UsageError(f"{path}.kind: {kind!r} is not one of {', '.join(_ENDPOINTS)}")
    args = _fields(_ENDPOINTS[kind], data, path)
    if "storage" in args:
        args["storage"] = _construct(StorageAccess, _fields(StorageAccess, args["storage"], f"{path}.storage"),
                                     f"{path}.storage")
    endpoint: Endpoint = _construct(_ENDPOINTS[kind], args, path)
    return endpoint


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Artifacts:
    """Explicit copy requests (importImage, ``ferry copy SRC DST``)."""

    kind: ClassVar[str] = "artifacts"
    requests: tuple[CopyRequest, ...]


@dataclass(frozen=True)
class ExportRefs:
    """ACR's export artifacts, relative to the source registry: ``repo`` (= ``latest``),
    ``repo:tag``, ``repo:GLOB`` (over the repository's tags) and ``repo@digest`` (untagged)."""

    kind: ClassVar[str] = "refs"
    refs: tuple[str, ...]


@dataclass(frozen=True)
class RepositoryTags:
    """Every tag of ``source_repository`` fully matching ``pattern`` (a regex; None: all tags), into
    ``target_repository`` under the same tags (or untagged when ``keep_tags`` is false)."""

    kind: ClassVar[str] = "tags"
    source_repository: str
    target_repository: str
    pattern: str | None = None
    keep_tags: bool = True

    def __post_init__(self) -> None:
        if self.pattern is not None:
            TagPattern.compile(self.pattern, "tag pattern")


@dataclass(frozen=True)
class ArchiveContents:
    """Every artifact an archive names, under ``prefix`` after ``remap`` (FROM → TO repository paths)."""

    kind: ClassVar[str] = "archive"
    prefix: str = ""
    remap: tuple[tuple[str, str], ...] = ()


Selection = Artifacts | ExportRefs | RepositoryTags | ArchiveContents
_SELECTIONS: dict[str, Any] = {cls.kind: cls for cls in (Artifacts, ExportRefs, RepositoryTags, ArchiveContents)}


def _request_from_json(data: Any, path: str) -> CopyRequest:
    args = _fields(CopyRequest, data, path)
    args["target_tags"] = tuple(_list(args.get("target_tags"), f"{path}.targetTags"))
    return CopyRequest(**args)


def selection_from_json(data: Any, path: str) -> Selection:
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _SELECTIONS:
        raise UsageError(f"{path}.kind: {kind!r} is not one of {', '.join(_SELECTIONS)}")
    args = _fields(_SELECTIONS[kind], data, path)
    if kind == "artifacts":
        args["requests"] = tuple(_request_from_json(r, f"{path}.requests[{i}]")
                                 for i, r in enumerate(_list(args.get("requests"), f"{path}.requests")))
    elif kind == "refs":
        args["refs"] = tuple(_list(args.get("refs"), f"{path}.refs"))
    elif kind == "archive":
        pairs = _list(args.get("remap"), f"{path}.remap")
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise UsageError(f"{path}.remap: must be a list of [FROM, TO] pairs")
        args["remap"] = tuple((str(a), str(b)) for a, b in pairs)
    result: Selection = _construct(_SELECTIONS[kind], args, path)
    return result


# --------------------------------------------------------------------------- options and the job


@dataclass(frozen=True)
class JobOptions:
    """ACR's OverwriteTags and ContinueOnErrors, and Ferry's own knobs.

    Without ``continue_on_errors`` nothing is tagged (and no archive published) if any artifact fails.
    """

    overwrite_tags: bool = False
    continue_on_errors: bool = False
    include_referrers: bool = True
    include_foreign_layers: bool = False
    platforms: tuple[str, ...] = ()
    parallelism: int = 8
    max_artifacts: int = DEFAULT_MAX_ARTIFACTS
    batch_max_bytes: int = 512 * 1024 * 1024
    batch_max_blobs: int = 64

    def __post_init__(self) -> None:
        for name in ("parallelism", "max_artifacts", "batch_max_bytes", "batch_max_blobs"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{_camel(name)} must be at least 1")
        for platform in self.platforms:
            if not isinstance(platform, str) or not _PLATFORM.fullmatch(platform):
                raise UsageError(f"platform {platform!r} is not os/arch[/variant], such as linux/arm64/v8")

    def copy_options(self, progress: ProgressListener | None = None, *, shared_tags: bool = True) -> CopyOptions:
        """The engine's options. ``shared_tags``: the destination is a registry other writers may
        tag at the same time, so written tags are read back after a pause (a file has one writer)."""
        return CopyOptions(overwrite_tags=self.overwrite_tags, include_referrers=self.include_referrers,
                           platforms=frozenset(self.platforms) or None, parallelism=self.parallelism,
                           progress=progress, all_or_nothing=not self.continue_on_errors,
                           include_foreign_layers=self.include_foreign_layers,
                           **({} if shared_tags else {"tag_settle_seconds": 0.0}))


@dataclass(frozen=True)
class JobSpec:
    """One copy job. Construct it directly or with :meth:`from_json`; both validate the combination."""

    source: Endpoint
    destination: Endpoint
    select: tuple[Selection, ...]
    options: JobOptions = field(default_factory=JobOptions)

    def __post_init__(self) -> None:
        if not self.select:
            raise UsageError("a job selects nothing: give at least one artifact")
        if isinstance(self.source, ArchiveEndpoint) and (self.source.overwrite or self.source.baseline):
            raise UsageError("overwrite and baseline apply to an archive destination, not a source")
        if isinstance(self.destination, ArchiveEndpoint) and self.destination.delete_on_success:
            raise UsageError("delete on success applies to an archive source, not a destination")
        for item in self.select:
            if isinstance(item, ArchiveContents) and not isinstance(self.source, ArchiveEndpoint):
                raise UsageError("an archive's contents can only be selected from an archive source")
            if isinstance(item, ExportRefs | RepositoryTags) and isinstance(self.source, ArchiveEndpoint):
                raise UsageError("an archive source is selected by its contents, not by refs or tags")

    @property
    def exports_archive(self) -> bool:
        return isinstance(self.destination, ArchiveEndpoint)

    def copy_options(self, progress: ProgressListener | None = None) -> CopyOptions:
        """The engine's options for this job (its destination decides whether tags are shared)."""
        return self.options.copy_options(progress, shared_tags=isinstance(self.destination, RegistryEndpoint))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _to_json(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> JobSpec:
        """The spec from its JSON; UsageError naming the bad field."""
        args = _fields(cls, data, "job")
        return cls(source=endpoint_from_json(args.get("source"), "job.source"),
                   destination=endpoint_from_json(args.get("destination"), "job.destination"),
                   select=tuple(selection_from_json(s, f"job.select[{i}]")
                                for i, s in enumerate(args.get("select") or [])),
                   options=_options_from_json(args.get("options") or {}))


def _options_from_json(data: Any) -> JobOptions:
    args = _fields(JobOptions, data, "job.options")
    if "platforms" in args:
        args["platforms"] = tuple(_list(args["platforms"], "job.options.platforms"))
    for name in ("parallelism", "max_artifacts", "batch_max_bytes", "batch_max_blobs"):
        if name in args and (not isinstance(args[name], int) or isinstance(args[name], bool)):
            raise UsageError(f"job.options.{_camel(name)}: must be a whole number")
    options: JobOptions = _construct(JobOptions, args, "job.options")
    return options


def _construct(cls: Any, args: dict[str, Any], path: str) -> Any:
    """``cls(**args)``; a missing field or a wrong value is a UsageError naming ``path``."""
    try:
        return cls(**args)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in args
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        detail = f"missing {', '.join(_camel(m) for m in missing)}" if missing else "a field has the wrong type"
        raise UsageError(f"{path}: {detail}") from exc
