"""infra/checkov_gate.py, which `make checkov` uses to judge checkov's JSON report: checkov exits 0
when a file does not parse, so the gate, not the exit code, decides."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.infra.bicep import INFRA


def gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("checkov_gate", INFRA / "checkov_gate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(*, passed: int = 3, failed: list[dict] | None = None, skipped: list[dict] | None = None,
           parsing: list[str] | None = None) -> dict[str, Any]:
    failed, skipped, parsing = failed or [], skipped or [], parsing or []
    return {"check_type": "bicep",
            "results": {"passed_checks": [{}] * passed, "failed_checks": failed, "skipped_checks": skipped,
                        "parsing_errors": parsing},
            "summary": {"passed": passed, "failed": len(failed), "skipped": len(skipped),
                        "parsing_errors": len(parsing)}}


def check(check_id: str, comment: str | None = None) -> dict[str, Any]:
    found = {"check_id": check_id, "check_name": "a check", "resource": "Microsoft.X/y.z", "file_path": "/m.bicep"}
    if comment is not None:
        found["check_result"] = {"result": "SKIPPED", "suppress_comment": comment}
    return found


def test_a_clean_report_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report(skipped=[check("CKV_AZURE_35", " No virtual network here.")])))
    assert gate().main(["gate", str(path)]) == 0
    assert "3 passed, 0 failed, 1 skipped, 0 parsing errors" in capsys.readouterr().out


@pytest.mark.parametrize(("bad", "says"), [
    (report(parsing=["/w/infra/main.bicep"]), "not parsed: /w/infra/main.bicep"),
    (report(failed=[check("CKV_AZURE_59")]), "failed CKV_AZURE_59"),
    (report(skipped=[check("CKV_AZURE_35", "No comment provided")]), "CKV_AZURE_35 on Microsoft.X/y.z in /m.bicep "
                                                                     "without a reason"),
    (report(skipped=[check("CKV_AZURE_35", " : ")]), "without a reason"),
    (report(passed=0), "checkov ran no check"),
    ({"check_type": "terraform", "results": {}, "summary": {}}, "scanned no Bicep file"),
    ([], "scanned no Bicep file"),
])
def test_what_fails_the_gate(bad: Any, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(bad))
    assert gate().main(["gate", str(path)]) == 1
    assert says in capsys.readouterr().out


def test_every_skip_in_the_templates_gives_a_reason():
    for path in INFRA.rglob("*.bicep"):
        if ".venv" in path.parts[-3] or any(p.startswith(".venv") for p in path.parts):
            continue
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                _, _, rest = line.partition("checkov:skip=")
                check_id, _, reason = rest.partition(":")
                assert check_id.startswith("CKV") and len(reason.strip()) > 20, f"{path.name}: {line.strip()}"
