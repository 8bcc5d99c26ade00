"""What a sync remembers between ticks: per tag, the last digest it evaluated, the verdict, and a
hash of the policies that judged it; and a record of every run, newest first.

An unchanged upstream is then one HEAD per tag, and a digest rejected once is not copied, gated
and notified again unless its policies change. :class:`FileSyncState` keeps it in a JSON file (the
CLI); the Functions app keeps the same records in Table storage.

May be imported by ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ferry.errors import UsageError
from ferry.files import replace_file

MAX_RUNS = 100
#: Upstream tags one tick looks at (the filter chain's first ones); more are left out, saying so.
MAX_TAGS = 1000
#: How often a tick writes the verdicts it remembers (the whole record is rewritten each time): a
#: tick that judges a thousand tags writes a few records, not a thousand. A crash loses at most the
#: last seconds' verdicts: the next tick judges those digests again (a promotion then gets one more
#: rollback tag and notification; the stable tag points at the same digest).
SAVE_EVERY = 2.0
#: Reasons kept per tag, and their length, in what a sync remembers.
MAX_REASONS, MAX_REASON_CHARS = 3, 300


@dataclass
class TagState:
    """The last evaluation of one upstream tag."""

    digest: str
    verdict: str  # promoted | rejected
    policies: str
    reasons: list[str] = field(default_factory=list)
    unique_tag: str | None = None


@dataclass
class TagOutcome:
    """What one tick did with one tag."""

    tag: str
    digest: str | None
    status: str  # unchanged | promoted | rejected | failed | would-sync | pending | awaiting
    reasons: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    #: Bytes this tag's copy moved; 0 for an archive target (the archive's bytes are the run's).
    bytes_moved: int = 0
    #: With status ``awaiting``: the external policies whose verdicts are to come on the callback.
    awaiting: list[str] = field(default_factory=list)


@dataclass
class SyncRun:
    """One tick: when, and per tag what happened."""

    run_id: str
    started: str
    finished: str | None = None
    dry_run: bool = False
    tags: list[TagOutcome] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    #: The verdicts the run waits for: ``{"tag", "digest", "policy", "timeoutSeconds"}`` each.
    awaiting: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds the source registry asked to hold off; the run resumes after them (unfinished till then).
    retry_after: float | None = None
    #: For an archive target: the archive this run wrote (None when nothing was published), its bytes.
    archive: str | None = None
    archive_bytes: int = 0
    #: Why the tick could not look at its tags (the source unreachable, the repository missing...).
    failure: str | None = None
    #: What the run left out, and why (more tags selected than one tick looks at, outcomes not kept).
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncRun:
        """The run :meth:`to_json` wrote (fields it does not know are dropped)."""
        known = {f.name for f in dataclasses.fields(cls)}
        tag_fields = {f.name for f in dataclasses.fields(TagOutcome)}
        run = cls(**{k: v for k, v in data.items() if k in known and k != "tags"})
        run.tags = [TagOutcome(**{k: v for k, v in t.items() if k in tag_fields}) for t in data.get("tags") or []]
        return run


def stored_run(run: SyncRun) -> dict[str, Any]:
    """What is kept of ``run``: every tag that changed, and only the count of the unchanged ones (a
    tick over thousands of unchanged tags stays a small record)."""
    data = run.to_json()
    data["tags"] = [t for t in data["tags"] if t["status"] != "unchanged"]
    data["unchanged"] = len(run.tags) - len(data["tags"])
    return data


def with_run(runs: list[dict[str, Any]], run: SyncRun, limit: int) -> list[dict[str, Any]]:
    """``runs`` (newest first) with ``run`` recorded: in its place when it is there already (a run
    finished after waiting for verdicts), else first; at most ``limit``."""
    recorded = stored_run(run)
    if any(r.get("run_id") == run.run_id for r in runs):
        return [recorded if r.get("run_id") == run.run_id else r for r in runs][:limit]
    return [recorded, *runs][:limit]


class SyncState(Protocol):
    def tag(self, tag: str) -> TagState | None: ...

    def set_tag(self, tag: str, state: TagState) -> None: ...

    def add_run(self, run: SyncRun) -> None:
        """Record ``run``, replacing the record of the same run id."""
        ...

    def runs(self) -> list[dict[str, Any]]: ...

    def last_archive(self) -> str | None:
        """The archive the last incremental transfer wrote (the next one's baseline)."""
        ...

    def set_last_archive(self, url: str) -> None: ...

    def keep_only(self, tags: Collection[str]) -> None:
        """Forget every tag not in ``tags`` (the ones this tick selected)."""
        ...


def fit(body: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """``body`` within ``max_chars`` of JSON: the oldest runs dropped first, then what the remembered
    tags keep only to show (reasons, rollback tags: :data:`MAX_TAGS` tags of 128 characters with
    their reasons run past a table record), then the newest run's tag outcomes cut, saying how many."""
    def size() -> int:
        return len(json.dumps(body, separators=(",", ":")))

    while size() > max_chars and len(body["runs"]) > 1:
        body["runs"].pop()
    if size() > max_chars:
        body["tags"] = {tag: {**kept, "reasons": [], "unique_tag": None} for tag, kept in body["tags"].items()}
    if size() > max_chars and body["runs"]:
        newest = body["runs"][0] = dict(body["runs"][0])
        outcomes = list(newest["tags"])
        while outcomes and size() > max_chars:
            outcomes = outcomes[: len(outcomes) // 2]
            newest["tags"] = outcomes
            newest["notes"] = [*newest.get("notes", []), f"{len(outcomes)} tag outcome(s) kept of more"][-3:]
    return body


class StoredSyncState:
    """A sync's state as one JSON body (``tags``, ``runs`` newest first, ``lastArchive``), written whole
    by :meth:`_write`, within ``max_chars``: at every change but a tag's, which waits up to
    :data:`SAVE_EVERY` seconds for the next write."""

    max_runs = MAX_RUNS
    max_chars = 8_000_000

    def __init__(self, data: dict[str, Any] | None) -> None:
        data = data or {}
        self._body: dict[str, Any] = {"tags": dict(data.get("tags") or {}), "runs": list(data.get("runs") or []),
                                      "lastArchive": data.get("lastArchive")}
        self._saved_at = time.monotonic()  # a tick's first verdicts wait for the next write, like the rest

    def tag(self, tag: str) -> TagState | None:
        found = self._body["tags"].get(tag)
        return TagState(**found) if isinstance(found, dict) else None

    def set_tag(self, tag: str, state: TagState) -> None:
        """Remember ``state``; written at once if the last write is :data:`SAVE_EVERY` seconds old, else
        with the next write (at the latest the run's record at the tick's end)."""
        reasons = [reason[:MAX_REASON_CHARS] for reason in state.reasons[:MAX_REASONS]]
        self._body["tags"][tag] = dataclasses.asdict(dataclasses.replace(state, reasons=reasons))
        if time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save()

    def add_run(self, run: SyncRun) -> None:
        self._body["runs"] = with_run(self._body["runs"], run, self.max_runs)
        self._save()

    def runs(self) -> list[dict[str, Any]]:
        return list(self._body["runs"])

    def last_archive(self) -> str | None:
        found = self._body.get("lastArchive")
        return str(found) if found else None

    def set_last_archive(self, url: str) -> None:
        self._body["lastArchive"] = url
        self._save()

    def keep_only(self, tags: Collection[str]) -> None:
        keep = set(tags)
        if set(self._body["tags"]) - keep:
            self._body["tags"] = {t: v for t, v in self._body["tags"].items() if t in keep}
            self._save()

    def _save(self) -> None:
        self._write(fit(self._body, self.max_chars))
        self._saved_at = time.monotonic()

    def _write(self, body: dict[str, Any]) -> None:
        raise NotImplementedError


class FileSyncState(StoredSyncState):
    """A sync's state in one JSON file, written whole under a temporary name and renamed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"sync state {self.path} is not readable JSON: {exc}") from exc
        super().__init__(data if isinstance(data, dict) else None)

    def _write(self, body: dict[str, Any]) -> None:
        replace_file(self.path, json.dumps(body, indent=1).encode())
