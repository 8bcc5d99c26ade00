"""Read checkov's JSON report of infra/ and fail unless it is clean: `make checkov` runs it.

checkov exits 0 when it cannot parse a file (the file is then not scanned at all), so its exit
code says nothing about the Bicep that matters. This reads the report instead and passes only when
every file parsed, no check failed, and every skipped check carries a reason in the .bicep file
(`// checkov:skip=CKV_...: reason`). Standard library only: it runs in checkov's own venv.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def reason(check: dict[str, Any]) -> str:
    """The reason written after ``checkov:skip=ID:`` (checkov says "No comment provided" without one)."""
    comment = str((check.get("check_result") or {}).get("suppress_comment") or "").strip(" :")
    return "" if comment == "No comment provided" else comment


def problems(report: Any) -> tuple[list[str], dict[str, int]]:
    """What is wrong with a checkov JSON report (a dict, or a list of them), and the summed counts."""
    reports = report if isinstance(report, list) else [report]
    found: list[str] = []
    totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    scanned = [r for r in reports if isinstance(r, dict) and r.get("check_type") == "bicep"]
    if not scanned:
        return ["checkov scanned no Bicep file (no 'bicep' report)"], totals
    for r in scanned:
        summary, results = r.get("summary", {}), r.get("results", {})
        for name in totals:
            totals[name] += int(summary.get(name, 0))
        found += [f"not parsed: {path}" for path in results.get("parsing_errors", [])]
        found += [f"failed {c['check_id']} on {c['resource']} in {c['file_path']}: {c['check_name']}"
                  for c in results.get("failed_checks", [])]
        found += [f"skipped {c['check_id']} on {c['resource']} in {c['file_path']} without a reason"
                  for c in results.get("skipped_checks", []) if not reason(c)]
    if totals["parsing_errors"] and not any(p.startswith("not parsed") for p in found):
        found.append(f"{totals['parsing_errors']} parsing error(s)")
    if totals["passed"] + totals["failed"] + totals["skipped"] == 0:
        found.append("checkov ran no check")
    return found, totals


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: checkov_gate.py REPORT.json", file=sys.stderr)
        return 2
    found, totals = problems(json.loads(Path(argv[1]).read_text()))
    print("checkov (bicep): " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in totals.items()))
    for line in found:
        print(f"  {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
