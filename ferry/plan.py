"""The copy engine's data: requests, options, per-artifact results and plans, and the whole
serializable :class:`CopyPlan` (a Durable orchestration plans in one activity, moves blobs in
batches in others, and finishes in a last one).

May be imported by anything above ``ferry/transports``; the engine itself is :mod:`ferry.copy`.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferry.errors import ConflictError, FerryError
from ferry.oci.descriptor import Descriptor
from ferry.redact import redact
from ferry.reference import is_valid_repository, is_valid_tag
from ferry.transports.base import PlannedArtifact, WritePlan
from ferry.waves import FinishWrites, finish_waves


@dataclass(frozen=True)
class CopyRequest:
    """Copy ``source_repository`` at ``source_reference`` (tag or digest) into ``target_repository``.

    ``target_tags`` are written last; none means the content lands untagged (by digest only).
    """

    source_repository: str
    source_reference: str
    target_repository: str
    target_tags: tuple[str, ...] = ()

    @property
    def source_label(self) -> str:
        sep = "@" if ":" in self.source_reference else ":"
        return f"{self.source_repository}{sep}{self.source_reference}"

    @property
    def target_label(self) -> str:
        tags = ",".join(self.target_tags)
        return f"{self.target_repository}:{tags}" if tags else f"{self.target_repository} (untagged)"

    def invalid_name(self) -> str | None:
        """What is wrong with the target repository or a tag (the distribution grammar, whole string,
        ASCII: :mod:`ferry.reference`), or None."""
        repository = self.target_repository
        if not is_valid_repository(repository):
            return f"target repository {repository!r} is not a valid repository name"
        for tag in self.target_tags:
            if not is_valid_tag(tag):
                return (f"target tag {tag!r} is not a valid tag (ASCII letters, digits, '_', '.' and '-', "
                        "128 at most, not starting with '.' or '-')")
        return None


class ProgressListener(Protocol):
    """Receives progress; called from worker threads."""

    def planned(self, total_bytes: int, total_blobs: int, artifacts: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def artifact_done(self, result: ArtifactResult) -> None: ...


@dataclass
class CopyOptions:
    """How to copy. ``platforms`` holds ``os/arch[/variant]`` strings; None copies every platform."""

    overwrite_tags: bool = False
    include_referrers: bool = True
    platforms: frozenset[str] | None = None
    parallelism: int = 8
    progress: ProgressListener | None = None
    #: Without ContinueOnErrors: if any artifact fails, no tag of any artifact is written (content may
    #: be, by digest, when the failure comes late).
    all_or_nothing: bool = False
    #: Seconds between writing a run's tags and reading them back. Registries have no conditional
    #: tag write: a concurrent writer that checked the tag just before ours landed may still
    #: replace it; the pause lets such a write land before the read-back that decides the result.
    tag_settle_seconds: float = 0.2
    #: Copy non-distributable (foreign) layers like any blob, fetched from their URLs if the source
    #: registry lacks them (for air-gapped targets). Without it they stay at their URLs, except
    #: those a source holds as entries (an archive exported with this option), which are carried on.
    include_foreign_layers: bool = False


@dataclass
class ArtifactResult:
    """What happened to one requested artifact."""

    source: str
    target: str
    status: str = "pending"  # copied | failed
    digest: str | None = None
    media_type: str | None = None
    tags: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    manifests: int = 0
    blobs: int = 0
    size: int = 0
    referrers: int = 0
    error: str | None = None
    #: The tags this run wrote and read back pointing at ``digest`` (``tags`` are the requested ones).
    tagged: list[str] = field(default_factory=list)
    #: The exit code of the failure's kind (3 registry, 4 auth, 5 not found, 6 integrity, 7 conflict);
    #: None when the artifact was only held back because another failed.
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "copied"


@dataclass
class CopyReport:
    """The outcome of a run: per-artifact results and blob transfer counters."""

    artifacts: list[ArtifactResult]
    blobs_total: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_total: int = 0
    bytes_uploaded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    @property
    def failed(self) -> list[ArtifactResult]:
        return [a for a in self.artifacts if not a.ok]


@dataclass
class ArtifactPlan:
    """One artifact's walked graph: what to write, in order, and its result so far."""

    request: CopyRequest
    result: ArtifactResult
    root: Descriptor | None = None
    root_raw: bytes = b""
    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    referrer_links: list[tuple[Descriptor, Descriptor]] = field(default_factory=list)
    blobs: dict[str, Descriptor] = field(default_factory=dict)
    failed: bool = False
    #: The failure may pass when retried (the registry was unreachable, 5xx, 429).
    transient: bool = False

    def fail(self, error: BaseException | str) -> None:
        self.failed = True
        if self.result.error is None:
            self.result.error = redact(str(error))
            self.transient = isinstance(error, FerryError) and error.transient
            self.result.exit_code = error.exit_code if isinstance(error, FerryError) else 1
        self.result.status = "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "request": dataclasses.asdict(self.request),
            "result": dataclasses.asdict(self.result),
            "root": self.root.to_json() if self.root else None,
            "root_raw": _b64(self.root_raw),
            "manifests": [[d.to_json(), _b64(raw)] for d, raw in self.manifests],
            "referrer_links": [[s.to_json(), r.to_json()] for s, r in self.referrer_links],
            "blobs": [b.to_json() for b in self.blobs.values()],
            "failed": self.failed,
            "transient": self.transient,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArtifactPlan:
        request = data["request"]
        return cls(
            request=CopyRequest(request["source_repository"], request["source_reference"],
                                request["target_repository"], tuple(request["target_tags"])),
            result=ArtifactResult(**data["result"]),
            root=Descriptor.from_json(data["root"]) if data["root"] else None,
            root_raw=base64.b64decode(data["root_raw"]),
            manifests=[(Descriptor.from_json(d), base64.b64decode(raw)) for d, raw in data["manifests"]],
            referrer_links=[(Descriptor.from_json(s), Descriptor.from_json(r)) for s, r in data["referrer_links"]],
            blobs={b["digest"]: Descriptor.from_json(b) for b in data["blobs"]},
            failed=data["failed"],
            transient=data.get("transient", False),
        )


@dataclass(frozen=True)
class Placement:
    """Where one blob goes: the target repository, its descriptor and the source repository to read."""

    target: str
    descriptor: Descriptor
    source: str


@dataclass(eq=False)
class Write:
    """One write of a run's last phase, once per target repository however many ``owners`` (artifacts)
    need it: a manifest (``descriptor``, ``raw``), a referrer record (``subject`` -> ``descriptor``) or
    a tag (``tag`` -> root ``descriptor`` whose bytes are ``raw``)."""

    repository: str
    descriptor: Descriptor
    raw: bytes = b""
    subject: Descriptor | None = None
    tag: str = ""
    owners: list[ArtifactPlan] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return any(not owner.failed for owner in self.owners)


@dataclass
class CopyPlan:
    """A whole run, walked: per-artifact plans and, per unique blob, every place it must land.

    Serializable (:meth:`to_json`), so a Durable orchestration can plan in one activity, move
    blobs in batches in others, and finish in a last one (:func:`transfer_blobs`, :func:`finish_copy`).
    """

    artifacts: list[ArtifactPlan]
    placements: dict[str, list[Placement]] = field(default_factory=dict)

    @property
    def live(self) -> list[ArtifactPlan]:
        return [a for a in self.artifacts if not a.failed]

    @property
    def bytes_total(self) -> int:
        return sum(group[0].descriptor.size for group in self.placements.values())

    def write_plan(self) -> WritePlan:
        live, writes = self.live, self.finish_writes()
        return WritePlan(
            artifacts=tuple(PlannedArtifact(p.request.target_repository, p.request.target_tags, p.root)
                            for p in live if p.root is not None),
            blobs=tuple(group[0].descriptor for group in self.placements.values()),
            manifests=tuple({w.descriptor.digest: (w.descriptor, w.raw) for wave in writes.manifests
                             for w in wave}.values()),
            referrers=tuple((w.repository, w.subject, w.descriptor) for w in writes.referrers if w.subject),
        )

    def finish_writes(self, tag_stores_manifest: bool = False) -> FinishWrites[Write]:
        """The writes of the live artifacts, each (repository, digest), record and tag once.

        ``tag_stores_manifest``: the destination's tag write stores the manifest (a registry's PUT
        by tag), so a tagged root that no other manifest of the run references is not written by
        digest first: its first tag writes it, in a wave before its other tags. (Not for an
        all-or-nothing run: there every manifest must be stored before the first tag is written.)
        """
        manifests: dict[tuple[str, str], Write] = {}
        referrers: dict[tuple[str, str, str], Write] = {}
        tags: dict[tuple[str, str], Write] = {}
        for plan in self.live:
            repository, root = plan.request.target_repository, plan.root
            for descriptor, raw in plan.manifests:
                write = Write(repository, descriptor, raw)
                manifests.setdefault((repository, descriptor.digest), write).owners.append(plan)
            for subject, referrer in plan.referrer_links:
                write = Write(repository, referrer, subject=subject)
                referrers.setdefault((repository, subject.digest, referrer.digest), write).owners.append(plan)
            for tag in plan.request.target_tags:
                assert root is not None  # a live artifact has resolved its root
                tags.setdefault((repository, tag), Write(repository, root, plan.root_raw, tag=tag)).owners.append(plan)
        return finish_waves(manifests, referrers, tags, tag_stores_manifest)

    def fail_tag_collisions(self) -> None:
        """Artifacts of this run that would point one tag at different manifests all fail."""
        claims: dict[tuple[str, str], list[ArtifactPlan]] = {}
        for plan in self.live:
            for tag in plan.request.target_tags:
                claims.setdefault((plan.request.target_repository, tag), []).append(plan)
        for (repository, tag), plans in claims.items():
            if len({p.root.digest for p in plans if p.root is not None}) > 1:
                sources = ", ".join(p.request.source_label for p in plans)
                for plan in plans:
                    plan.fail(ConflictError(f"{repository}:{tag} would name different manifests in one run "
                                            f"({sources})"))

    def batches(self, max_bytes: int = 512 * 1024 * 1024, max_blobs: int = 64) -> list[list[str]]:
        """Blob digests grouped for fan-out: biggest first, each batch under ``max_bytes`` (a blob
        larger than that gets a batch of its own) and ``max_blobs``."""
        ordered = sorted(self.placements, key=lambda d: -self.placements[d][0].descriptor.size)
        batches: list[list[str]] = []
        current: list[str] = []
        size = 0
        for digest in ordered:
            blob_size = self.placements[digest][0].descriptor.size
            if current and (size + blob_size > max_bytes or len(current) >= max_blobs):
                batches.append(current)
                current, size = [], 0
            current.append(digest)
            size += blob_size
        if current:
            batches.append(current)
        return batches

    def to_json(self) -> dict[str, Any]:
        return {
            "artifacts": [a.to_json() for a in self.artifacts],
            "placements": {d: [[p.target, p.descriptor.to_json(), p.source] for p in group]
                           for d, group in self.placements.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CopyPlan:
        return cls(
            artifacts=[ArtifactPlan.from_json(a) for a in data["artifacts"]],
            placements={d: [Placement(t, Descriptor.from_json(desc), src) for t, desc, src in group]
                        for d, group in data["placements"].items()},
        )


@dataclass
class BlobBatchResult:
    """What one batch of blobs did: counters, and an error message per digest that failed."""

    errors: dict[str, str] = field(default_factory=dict)
    #: Digests whose failure may pass when retried (connection lost, 5xx, 429).
    transient: list[str] = field(default_factory=list)
    uploaded: int = 0
    mounted: int = 0
    skipped: int = 0
    bytes_uploaded: int = 0

    def merge(self, other: BlobBatchResult) -> None:
        self.errors.update(other.errors)
        self.transient += [d for d in other.transient if d not in self.transient]
        self.uploaded += other.uploaded
        self.mounted += other.mounted
        self.skipped += other.skipped
        self.bytes_uploaded += other.bytes_uploaded

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlobBatchResult:
        return cls(**data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hold_back(plans: list[ArtifactPlan], reason: str) -> None:
    """Fail ``plans`` for ``reason``: another artifact failed and the run is all-or-nothing."""
    for plan in plans:
        fresh = plan.result.error is None
        plan.fail(FerryError(reason))
        if fresh:
            plan.result.exit_code = None  # not its own failure: it does not decide the exit code


def place_blobs(plans: list[ArtifactPlan]) -> dict[str, list[Placement]]:
    """digest -> placements, each target repository once (recomputed whenever artifacts drop out)."""
    placements: dict[str, list[Placement]] = {}
    for plan in plans:
        for digest, blob in plan.blobs.items():
            group = placements.setdefault(digest, [])
            if all(p.target != plan.request.target_repository for p in group):
                group.append(Placement(plan.request.target_repository, blob, plan.request.source_repository))
    return placements


