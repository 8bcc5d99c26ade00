"""What the CLI prints: a progress bar on a terminal, a plain summary otherwise, or JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from ferry.plan import ArtifactResult, CopyReport


class ProgressBar:
    """A :class:`ferry.plan.ProgressListener` drawing one bytes bar on stderr (TTY only)."""

    def __init__(self, console: Console, label: str) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, transient=True)
        self._task = self._progress.add_task(label, total=None)
        self._lock = threading.Lock()
        self._console = console

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def planned(self, total_bytes: int, total_blobs: int, artifacts: int) -> None:
        self._progress.update(self._task, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._progress.advance(self._task, nbytes)

    def artifact_done(self, result: ArtifactResult) -> None:
        mark = "[green]✓" if result.ok else "[red]✗"
        self._console.print(f"{mark}[/] {result.source} → {result.target}" + ("" if result.ok else f": {result.error}"))


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def report_dict(report: CopyReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    data["ok"] = report.ok
    return data


def print_json(data: dict[str, Any], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2) + "\n")


def print_summary(report: CopyReport, out: TextIO | None = None) -> None:
    """A plain, greppable summary: one line per artifact, then totals."""
    out = out or sys.stdout
    for result in report.artifacts:
        if result.ok:
            extra = f" [{', '.join(result.platforms)}]" if result.platforms else ""
            refs = f", {result.referrers} referrers" if result.referrers else ""
            out.write(f"copied  {result.source} -> {result.target} {result.digest}{extra}{refs}\n")
        else:
            out.write(f"FAILED  {result.source} -> {result.target}: {result.error}\n")
    ok = sum(1 for r in report.artifacts if r.ok)
    out.write(
        f"{ok}/{len(report.artifacts)} artifacts copied; blobs: {report.blobs_total} total, "
        f"{report.blobs_uploaded} uploaded, {report.blobs_mounted} mounted, {report.blobs_skipped} already present; "
        f"{human_bytes(report.bytes_uploaded)} sent of {human_bytes(report.bytes_total)} in {report.seconds:.1f}s\n")
