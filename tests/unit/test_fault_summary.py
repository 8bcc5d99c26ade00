"""The faults layer's summary is computed from the reports it is given, never assumed."""

from __future__ import annotations

import json

from tests.faults.summary import Figures, Layer, summary_lines


def layer_of(*cases: tuple[str, str, list[tuple[str, str]]]) -> Layer:
    """A layer fed ``(nodeid, class, [(when, outcome), ...])`` as pytest's reports would."""
    layer = Layer()
    for nodeid, cls, phases in cases:
        layer.classes[nodeid] = cls
        for when, outcome in phases:
            wasxfail = "product bug" if outcome == "xfailed" else None
            layer.report(nodeid, when, "skipped" if wasxfail else outcome, wasxfail)
    return layer


OK = [("setup", "passed"), ("call", "passed"), ("teardown", "passed")]


def test_each_case_counts_once_with_its_worst_phase():
    layer = layer_of(
        ("f::ok", "fault", OK),
        ("f::call-failed", "fault", [("setup", "passed"), ("call", "failed"), ("teardown", "passed")]),
        ("f::teardown-error", "attack", [("setup", "passed"), ("call", "passed"), ("teardown", "failed")]),
        ("f::known-bug", "attack", [("setup", "passed"), ("call", "xfailed"), ("teardown", "passed")]),
        ("f::skipped", "bad_input", [("setup", "skipped"), ("teardown", "passed")]),
        ("f::setup-only", "bad_input", [("setup", "passed")]),  # interrupted: not counted as passed
    )
    layer.report("elsewhere::x", "call", "passed")  # not in the layer: ignored
    assert layer.tally() == {
        "fault": {"tried": 2, "passed": 1, "skipped": 0, "xfailed": 0, "failed": 1},
        "attack": {"tried": 2, "passed": 0, "skipped": 0, "xfailed": 1, "failed": 1},
        "bad_input": {"tried": 0, "passed": 0, "skipped": 1, "xfailed": 0, "failed": 0},
    }
    lines = summary_lines(layer)
    assert "faults injected 2 / survived 1; attacks tried 2 / refused 0; bad inputs tried 0 / rejected 0" in lines
    assert "known product bug (xfail): f::known-bug: product bug" in lines
    assert "bytes re-sent per fault (bytes sent again / blob size): none measured in this run" in lines


def test_figures_name_their_test_and_flag_one_that_did_not_pass(monkeypatch):
    layer = layer_of(("f::resumed", "fault", OK), ("f::broken", "fault", [("call", "failed")]))
    figures = Figures(layer)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "f::resumed (call)")
    figures.record("bytes re-sent", "cut mid-body", 362_144, of=2_000_804)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "f::broken (call)")
    figures.record("bytes re-sent", "cut after headers", 0, of=1000)
    lines = summary_lines(layer)
    assert "  cut mid-body       362,144 / 2,000,804 (18.1 %)" in lines
    assert "  cut after headers  0 / 1,000 (0.0 %)  [f::broken: failed]" in lines
    data = json.loads(json.dumps(layer.as_json()))
    assert [(f["test"], f["value"], f["test_outcome"]) for f in data["figures"]] == [
        ("f::resumed", 362_144, "passed"), ("f::broken", 0, "failed")]
    assert data["tests"]["f::broken"] == {"class": "fault", "outcome": "failed"}
