"""The claims sweep decides what outlived its run: stale claims go, a running run's and a
pipeline's credentials stay."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from ferry.azure.claims import FileClaimStore, MemoryClaimStore, sweep

NAMES = ["runs/run-old-1/plan.json", "runs/run-old-1/batches.json", "runs/run-live-2/plan.json",
         "credentials/importImage/abc", "credentials/exportPipelines/mypipe", "credentials/importPipelines/other"]


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_sweep_deletes_what_outlived_its_run(tmp_path, kind):
    store = FileClaimStore(tmp_path) if kind == "file" else MemoryClaimStore()
    for name in NAMES:
        store.put_json(name, {"x": 1})
    if kind == "file":
        past = time.time() - 3600
        for path in tmp_path.rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))
        cutoff = datetime.now(UTC) - timedelta(minutes=30)
    else:
        cutoff = datetime.now(UTC) + timedelta(seconds=1)  # everything written so far is older
    store.put_json("runs/run-old-1/part-0.json", {})  # ...but not this one (file store: written now)
    deleted = sweep(store, cutoff, lambda instance: instance == "run-live-2")
    expected = {"runs/run-old-1/plan.json", "runs/run-old-1/batches.json", "credentials/importImage/abc"}
    if kind == "memory":
        expected.add("runs/run-old-1/part-0.json")
    assert set(deleted) == expected
    assert store.get_json("runs/run-live-2/plan.json") == {"x": 1}
    assert store.get_json("credentials/exportPipelines/mypipe") == {"x": 1}


def test_nothing_recent_is_swept(tmp_path):
    store = FileClaimStore(tmp_path)
    store.put_json("runs/r-12345/plan.json", {})
    assert sweep(store, datetime.now(UTC) - timedelta(hours=1), lambda _: False) == []
