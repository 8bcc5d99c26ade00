"""The bookkeeping of the faults layer: which class each case is, how each case ended, the figures
tests recorded, and the summary printed from them (tests/faults/conftest.py feeds it from pytest's
hooks; tests/unit/test_fault_summary.py checks it). Nothing here is hard-coded: every number comes
from what was recorded during the run."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: class marker -> what "passed" means for it
CLASSES = {
    "fault": "survived byte-exact (or failed clean, in bounded time)",
    "attack": "refused",
    "bad_input": "rejected with a clear error, nothing written",
}
#: the outcomes of one case, from best to worst; the worst of its phases (setup, call, teardown) wins
OUTCOMES = ("passed", "skipped", "xfailed", "failed")
RESENT = "bytes re-sent"


@dataclass
class Figure:
    figure: str
    name: str
    value: float
    of: float | None
    test: str


@dataclass
class Layer:
    """What one session collected and ran of the layer."""

    classes: dict[str, str] = field(default_factory=dict)  # nodeid -> class marker
    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> outcome, for the cases that ran
    xfail_reasons: dict[str, str] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)

    def report(self, nodeid: str, when: str, outcome: str, wasxfail: str | None = None) -> None:
        """One phase's report (pytest's ``report.outcome``: passed, failed or skipped) of a classified case."""
        if nodeid not in self.classes:
            return
        if outcome == "skipped" and wasxfail is not None:
            outcome = "xfailed"
            self.xfail_reasons[nodeid] = wasxfail
        elif outcome == "passed" and when != "call":
            return  # a setup or teardown that passed says nothing about the case
        previous = self.outcomes.get(nodeid, "passed")
        self.outcomes[nodeid] = max(previous, outcome, key=OUTCOMES.index)

    def record(self, figure: str, name: str, value: float, of: float | None = None, test: str = "") -> None:
        self.figures.append(Figure(figure, name, value, of, test))

    def tally(self) -> dict[str, dict[str, int]]:
        counts = {cls: Counter[str]() for cls in CLASSES}
        for nodeid, outcome in self.outcomes.items():
            counts[self.classes[nodeid]][outcome] += 1
        return {cls: {"tried": c["passed"] + c["failed"] + c["xfailed"], **{o: c[o] for o in OUTCOMES}}
                for cls, c in counts.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "classes": {cls: {**numbers, "passed_means": CLASSES[cls]} for cls, numbers in self.tally().items()},
            "figures": [{**asdict(f), "test_outcome": self.outcomes.get(f.test)} for f in self.figures],
            "xfailed": dict(sorted(self.xfail_reasons.items())),
            "tests": {nodeid: {"class": self.classes[nodeid], "outcome": outcome}
                      for nodeid, outcome in sorted(self.outcomes.items())},
        }


class Figures:
    """A recorder of measured figures into `layer`; each remembers the test that recorded it."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer

    def record(self, figure: str, name: str, value: float, *, of: float | None = None) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        self.layer.record(figure, name, value, of, test)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def summary_lines(layer: Layer) -> list[str]:
    tally = layer.tally()
    lines = [f"{'class':<10} {'tried':>6} {'passed':>6} {'failed':>6} {'xfail':>6} {'skipped':>7}   passed means"]
    for cls, numbers in tally.items():
        lines.append(f"{cls:<10} {numbers['tried']:>6} {numbers['passed']:>6} {numbers['failed']:>6} "
                     f"{numbers['xfailed']:>6} {numbers['skipped']:>7}   {CLASSES[cls]}")
    fault, attack, bad = tally["fault"], tally["attack"], tally["bad_input"]
    lines.append(f"faults injected {fault['tried']} / survived {fault['passed']}; "
                 f"attacks tried {attack['tried']} / refused {attack['passed']}; "
                 f"bad inputs tried {bad['tried']} / rejected {bad['passed']}")
    for kind in [RESENT, *sorted({f.figure for f in layer.figures} - {RESENT})]:
        measured = [f for f in layer.figures if f.figure == kind]
        title = "bytes re-sent per fault (bytes sent again / blob size)" if kind == RESENT else kind
        if not measured:
            lines.append(f"{title}: none measured in this run")
            continue
        lines.append(f"{title}:")
        width = max(len(f.name) for f in measured)
        for f in measured:
            text = f"  {f.name:<{width}}  {_number(f.value)}"
            if f.of:
                text += f" / {_number(f.of)} ({100 * f.value / f.of:.1f} %)"
            outcome = layer.outcomes.get(f.test, "passed")
            if outcome != "passed":
                text += f"  [{f.test}: {outcome}]"
            lines.append(text)
    for nodeid, reason in sorted(layer.xfail_reasons.items()):
        lines.append(f"known product bug (xfail): {nodeid}: {reason}")
    return lines
