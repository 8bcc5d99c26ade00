"""``ferry run RUN.json --pipelines DIR``: run an ACR PipelineRun through the Durable orchestrations,
on the local runner (the real azure-functions-durable replay engine), without a Functions host.

``DIR`` holds the pipelines as ACR JSON: ``NAME.json`` or ``exportPipelines/NAME.json`` /
``importPipelines/NAME.json``. Plans and batch state go to ``$FERRY_CLAIMS_DIR`` (default: a
temporary directory) unless ``AzureWebJobsStorage`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from cli.output import print_json
from ferry.errors import NotFoundError, UsageError
from ferry.jobs.progress import child_ids, combine
from ferry.settings import ALLOWED_HOSTS, APP_STORAGE, CLAIMS_DIR, Settings
from ferry.transfer.build import pipeline_run_job
from ferry.transfer.fields import is_valid_name
from ferry.transfer.models import Kind, parse_export_pipeline, parse_import_pipeline, parse_pipeline_run


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run an ACR PipelineRun (JSON) through the orchestrations, without a Functions host",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("run_file", metavar="RUN.json")
    parser.add_argument("--pipelines", required=True, metavar="DIR", help="directory of pipeline JSON files")
    parser.add_argument("--name", help="the run's name (default: the file's 'name', else its stem)")
    parser.add_argument("--json", action="store_true", help="print the PipelineRun response as JSON")
    parser.set_defaults(handler=run)


def _load(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{what} {path} does not exist") from exc
    except ValueError as exc:
        raise UsageError(f"{what} {path} is not valid JSON: {exc}") from exc


def find_pipeline(directory: Path, name: str, kind: Kind | None) -> tuple[Kind, dict[str, Any]]:
    """The pipeline ``name`` of ``kind`` (or either) in ``directory``; its kind from where it lies or its shape."""
    candidates: list[tuple[Kind | None, Path]] = []
    for candidate_kind, sub in (("export", "exportPipelines"), ("import", "importPipelines")):
        if kind in (None, candidate_kind):
            candidates.append((candidate_kind, directory / sub / f"{name}.json"))  # type: ignore[arg-type]
    candidates.append((kind, directory / f"{name}.json"))
    for found_kind, path in candidates:
        if path.is_file():
            body = _load(path, "pipeline")
            resolved = found_kind or _kind_of(body, path)
            return resolved, body
    raise NotFoundError(f"pipeline {name!r} is not in {directory} (looked for "
                        f"{', '.join(str(p) for _, p in candidates)})")


def _kind_of(body: Any, path: Path) -> Kind:
    type_ = str(body.get("type", "")).lower() if isinstance(body, dict) else ""
    if type_.endswith("exportpipelines"):
        return "export"
    if type_.endswith("importpipelines"):
        return "import"
    props = body.get("properties", {}) if isinstance(body, dict) else {}
    if "trigger" in props or ("source" in props and "uri" in (props.get("source") or {})):
        return "import"
    if "target" in props and "uri" in (props.get("target") or {}):
        return "export"
    raise UsageError(f"pipeline {path}: cannot tell export from import; set 'type' or put it under "
                     "exportPipelines/ or importPipelines/")


def _run_name(body: Any) -> str | None:
    """The run's name from the file when it is one: an ARM template's ``name`` may be an expression
    (``[parameters('runName')]``) or ``registry/run``; those are ignored (the file's stem is used)."""
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or name.startswith("["):
        return None
    name = name.rsplit("/", 1)[-1]
    return name if is_valid_name(name) else None


def run(args: argparse.Namespace) -> int:
    run_path = Path(args.run_file)
    body = _load(run_path, "run file")
    name = args.name or _run_name(body) or run_path.stem
    parsed = parse_pipeline_run(name, body)
    kind, found = find_pipeline(Path(args.pipelines), parsed.pipeline.name, parsed.pipeline.kind)
    settings = Settings.from_env()
    parse = parse_export_pipeline if kind == "export" else parse_import_pipeline
    pipeline = parse(parsed.pipeline.name, found, default_registry=settings.registry)
    job = pipeline_run_job(pipeline, parsed, settings)
    if not settings.claims_dir and not settings.get(APP_STORAGE):
        os.environ[CLAIMS_DIR] = tempfile.mkdtemp(prefix="ferry-run-")
    if not settings.get(ALLOWED_HOSTS):  # the user chose these pipelines' hosts, as for every CLI command
        os.environ[ALLOWED_HOSTS] = "*"
    # The app and the runner live beside the ferry package (see pyproject); import them only here.
    import function_app
    from runner import LocalOrchestrationRunner

    console = Console(stderr=True)
    show = console.is_terminal and not args.json
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                        console=console, transient=True)
    task = progress.add_task(f"{kind} {name}", total=100)

    instance_id = f"run-{name}-{uuid.uuid4().hex[:8]}"
    statuses: dict[str, Any] = {}
    lock = threading.Lock()

    def on_status(instance: str, status: Any) -> None:
        # Children (copy_batches) report their own progress; the run's is combined from theirs.
        with lock:
            statuses[instance] = status
            parent = statuses.get(instance_id)
            shown = combine(parent, [statuses.get(child) for child in child_ids(parent)])
        if show and isinstance(shown, dict) and "percentage" in shown:
            step = shown.get("step", "")
            progress.update(task, completed=shown["percentage"], description=f"{kind} {name}: {step}")

    if show:
        progress.start()
    try:
        with LocalOrchestrationRunner(function_app.app, on_status=on_status) as runner:
            result = runner.run("pipeline_run", {"runName": name, "kind": kind, "job": job.to_json()},
                                instance_id=instance_id)
    finally:
        if show:
            progress.stop()
    output: dict[str, Any] = result.output if isinstance(result.output, dict) else {
        "status": "Failed", "pipelineRunErrorMessage": result.error or "the orchestration failed"}
    response = {"name": name, "properties": {"request": parsed.request, "response": output,
                                             "provisioningState": "Succeeded"}}
    if args.json:
        print_json(response)
    else:
        for artifact in output.get("artifacts") or []:
            mark = "copied " if artifact.get("status") == "copied" else "FAILED "
            sys.stdout.write(f"{mark} {artifact['source']} -> {artifact['target']}"
                             + (f": {artifact.get('error')}" if artifact.get("error") else "") + "\n")
        sys.stdout.write(f"run {name}: {output.get('status')}"
                         + (f" ({output['pipelineRunErrorMessage']})" if output.get("pipelineRunErrorMessage") else "")
                         + (f", catalog {output['catalogDigest']}" if output.get("catalogDigest") else "") + "\n")
    return 0 if output.get("status") == "Succeeded" else 1
