"""The fault, attack and bad-input layer (issue 8): each test tries one case of one class.

Every test here carries exactly one class marker (registered in pyproject.toml; a test with none
or several stops the session at collection):

  fault      a fault injected: 5xx, 429, a cut connection, a killed service, a race, a lost
             response. Passed: the run survived it byte-exact, or, where the fault outlasts
             every retry, failed clean (nothing tagged) in bounded time.
  attack     hostile input from an API caller or a remote: a host off the allow-list, secret
             exfiltration, echoed bodies, credential rebinding, path traversal, tampered content,
             bodies and links made to exhaust. Passed: refused.
  bad_input  a malformed name, reference, option or body. Passed: rejected with a clear error,
             nothing written.

At the end of a session that ran any of them, the terminal summary shows per class the cases
tried and passed (each parametrized case counts), the known product bugs (strict xfail), and the
figures tests recorded through `figures`, such as the bytes an upload sent again after a fault.
With $FERRY_FAULT_SUMMARY set, the same figures are written there as JSON. Everything is counted
from the reports of this run.

Fixtures: those of the HTTP API (`app_env`, `client`, `runner`, `uname`, from tests/app/api.py);
`no_network` for modules that start no service (it also proves a refusal opened no socket);
`figures`, the session's recorder: ``figures.record("bytes re-sent", label, sent_again, of=size)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.app.api import app_env, client, runner, uname  # noqa: F401
from tests.faults.summary import CLASSES, Figures, Layer, summary_lines
from tests.netguard import forbid_network

HERE = Path(__file__).resolve().parent
LAYER = Layer()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures(LAYER)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    forbid_network(monkeypatch, request.node.nodeid, "in a test that starts no service")


def in_layer(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unclassified = []
    for item in filter(in_layer, items):
        marks = sorted({mark.name for mark in item.iter_markers() if mark.name in CLASSES})
        if len(marks) == 1:
            LAYER.classes[item.nodeid] = marks[0]
        else:
            unclassified.append(f"{item.nodeid}: {marks or 'no class marker'}")
    if unclassified:
        raise pytest.UsageError("every test in tests/faults needs exactly one of the markers "
                                f"{', '.join(CLASSES)}:\n  " + "\n  ".join(unclassified))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    LAYER.report(report.nodeid, report.when, report.outcome, getattr(report, "wasxfail", None))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not LAYER.outcomes:
        return
    terminalreporter.write_sep("=", "faults layer: faults, attacks and bad input (issue 8)")
    for line in summary_lines(LAYER):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("FERRY_FAULT_SUMMARY")
    if path and LAYER.outcomes:
        Path(path).write_text(json.dumps(LAYER.as_json(), indent=2) + "\n")
