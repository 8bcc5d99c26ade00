"""What a sync remembers stays bounded: unchanged tags are only counted in a run's record, a run
finished later replaces its own record, old runs go first when the record is too large (then the
newest run's outcomes are cut, saying so), tags no longer selected are forgotten, and a tag keeps
at most a few short reasons."""

from __future__ import annotations

import json

from ferry.sync.state import (
    MAX_REASON_CHARS,
    MAX_REASONS,
    FileSyncState,
    SyncRun,
    TagOutcome,
    TagState,
    fit,
    with_run,
)

DIGEST = "sha256:" + "a" * 64


def run_of(run_id: str, unchanged: int, promoted: int) -> SyncRun:
    tags = [TagOutcome(f"u{i}", DIGEST, "unchanged") for i in range(unchanged)]
    tags += [TagOutcome(f"p{i}", DIGEST, "promoted", promoted=[f"p{i}-{run_id}", f"p{i}"]) for i in range(promoted)]
    return SyncRun(run_id, started="2026-01-01T00:00:00Z", tags=tags)


def test_a_run_record_counts_unchanged_tags_and_a_rerun_replaces_its_record():
    runs = with_run([], run_of("r1", unchanged=500, promoted=2), 10)
    assert [t["tag"] for t in runs[0]["tags"]] == ["p0", "p1"] and runs[0]["unchanged"] == 500
    runs = with_run(runs, run_of("r2", 1, 0), 10)
    finished = run_of("r1", 0, 3)
    runs = with_run(runs, finished, 10)
    assert [r["run_id"] for r in runs] == ["r2", "r1"] and len(runs[1]["tags"]) == 3
    assert SyncRun.from_json(runs[1]).tags[2].tag == "p2"  # reads back, the count field aside
    assert [r["run_id"] for r in with_run(runs, run_of("r3", 0, 0), 2)] == ["r3", "r2"]


def test_fit_drops_the_oldest_runs_then_cuts_the_newest_saying_so():
    body = {"tags": {}, "runs": [], "lastArchive": None}
    for n in range(30):
        body["runs"] = with_run(body["runs"], run_of(f"r{n:02d}", 0, 20), 100)
    fitted = fit(json.loads(json.dumps(body)), 20_000)
    assert len(json.dumps(fitted, separators=(",", ":"))) <= 20_000
    assert fitted["runs"] and fitted["runs"][0]["run_id"] == "r29"  # the newest kept, the oldest gone
    huge = {"tags": {}, "runs": with_run([], run_of("big", 0, 2000), 10), "lastArchive": None}
    cut = fit(huge, 30_000)
    assert len(json.dumps(cut, separators=(",", ":"))) <= 30_000
    assert 0 < len(cut["runs"][0]["tags"]) < 2000 and "kept of more" in cut["runs"][0]["notes"][-1]


def test_forgotten_tags_and_capped_reasons_persist(tmp_path):
    path = tmp_path / "s.state.json"
    state = FileSyncState(path)
    for tag in ("a", "b", "c"):
        state.set_tag(tag, TagState(DIGEST, "rejected", "sha256:p", ["x" * 5000] * 10))
    kept = state.tag("a")
    assert kept is not None and len(kept.reasons) == MAX_REASONS and len(kept.reasons[0]) == MAX_REASON_CHARS
    state.keep_only(["b"])
    again = FileSyncState(path)
    assert (again.tag("a"), again.tag("c")) == (None, None) and again.tag("b") is not None


def test_a_tick_writes_its_verdicts_every_few_seconds_not_at_every_tag(tmp_path, monkeypatch):
    writes: list[int] = []

    class Counting(FileSyncState):
        def _write(self, body):
            writes.append(len(body["tags"]))
            super()._write(body)

    monkeypatch.setattr("ferry.sync.state.SAVE_EVERY", 3600.0)
    state = Counting(tmp_path / "c.state.json")
    for i in range(500):
        state.set_tag(f"t{i}", TagState(DIGEST, "promoted", "sha256:p"))
    assert writes == []  # nothing written yet: the run's record carries them
    state.add_run(run_of("r1", 0, 1))
    assert writes == [500] and FileSyncState(tmp_path / "c.state.json").tag("t499") is not None
    monkeypatch.setattr("ferry.sync.state.SAVE_EVERY", 0.0)
    state.set_tag("t500", TagState(DIGEST, "promoted", "sha256:p"))
    assert writes == [500, 501]  # once the interval passed, the next verdict is written at once
