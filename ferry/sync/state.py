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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ferry.errors import UsageError
from ferry.files import replace_file

MAX_RUNS = 100


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


def with_run(runs: list[dict[str, Any]], run: SyncRun, limit: int) -> list[dict[str, Any]]:
    """``runs`` (newest first) with ``run`` recorded: in its place when it is there already (a run
    finished after waiting for verdicts), else first; at most ``limit``."""
    recorded = run.to_json()
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


class FileSyncState:
    """A sync's state in one JSON file, written whole under a temporary name and renamed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"sync state {self.path} is not readable JSON: {exc}") from exc
        self._tags: dict[str, Any] = dict(data.get("tags") or {})
        self._runs: list[dict[str, Any]] = list(data.get("runs") or [])
        self._archive: str | None = data.get("lastArchive")

    def tag(self, tag: str) -> TagState | None:
        found = self._tags.get(tag)
        return TagState(**found) if isinstance(found, dict) else None

    def set_tag(self, tag: str, state: TagState) -> None:
        self._tags[tag] = dataclasses.asdict(state)
        self._save()

    def add_run(self, run: SyncRun) -> None:
        self._runs = with_run(self._runs, run, MAX_RUNS)
        self._save()

    def runs(self) -> list[dict[str, Any]]:
        return list(self._runs)

    def last_archive(self) -> str | None:
        return self._archive

    def set_last_archive(self, url: str) -> None:
        self._archive = url
        self._save()

    def _save(self) -> None:
        replace_file(self.path, json.dumps({"tags": self._tags, "runs": self._runs, "lastArchive": self._archive},
                                           indent=1).encode())
