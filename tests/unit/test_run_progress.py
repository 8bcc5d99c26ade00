"""A run's progress combined from its ``copy_batches`` children (:mod:`ferry.jobs.progress`), as the
HTTP API and ``ferry run`` read it."""

from __future__ import annotations

from types import SimpleNamespace

from api.runs import run_state
from ferry.jobs.progress import child_ids, child_status, children_field, combine

PARENT = {"stage": "export", "percentage": 5, "step": "copying", "batches": 130,
          "children": children_field("run-1:batches:", 3, 130, (5, 95))}


def test_children_are_named_by_the_parent_status():
    assert child_ids(PARENT) == ["run-1:batches:0", "run-1:batches:1", "run-1:batches:2"]
    assert child_ids({"percentage": 3}) == [] and child_ids(None) == []


def test_the_percentage_moves_with_the_children_s_batches():
    assert combine(PARENT, [None, None, None])["percentage"] == 5
    halfway = combine(PARENT, [child_status(64, 64), child_status(1, 64), child_status(0, 2)])
    assert (halfway["batchesDone"], halfway["percentage"]) == (65, 50)
    assert combine(PARENT, [child_status(64, 64), child_status(64, 64), child_status(2, 2)])["percentage"] == 95
    assert combine({"percentage": 40}, [child_status(1, 2)]) == {"percentage": 40}  # no children named


def test_the_api_run_state_combines_the_children():
    status = SimpleNamespace(runtime_status=SimpleNamespace(value="Running"), custom_status=PARENT, output=None,
                             created_time=None, last_updated_time=None)
    children = [SimpleNamespace(custom_status=child_status(32, 64)), SimpleNamespace(custom_status=None)]
    state = run_state(status, children)
    assert state is not None and state.custom_status["percentage"] == 27
    assert run_state(status).custom_status["percentage"] == 5  # type: ignore[union-attr]
