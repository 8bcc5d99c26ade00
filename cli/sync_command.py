"""``ferry sync SYNC.json --once``: one tick of a scheduled, gated sync, here and now, through the
app's own ``sync_run`` orchestration on the local runner.

The sync definition is the API's JSON (``{"name", "properties": {...}}``, see
:mod:`ferry.sync.definition`); what the sync remembers between ticks (last digests and verdicts,
past runs) is kept in ``--state`` (default ``SYNC.state.json`` beside the file). A sync whose
target is ``{"exportPipeline": NAME}`` reads that pipeline from ``--pipelines DIR`` (as ``ferry run``). ``--dry-run``
reports what would be copied, gated and promoted and moves nothing. ``--rollback TAG --to UNIQUE``
points a stable tag back at an earlier promotion. Scheduling is the Functions app's timer (or
cron around ``--once``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.locations import cli_environment
from cli.output import print_json
from cli.run_command import find_pipeline
from cli.running import add_insecure_option
from ferry.errors import FerryError, UsageError
from ferry.jobs.endpoints import JobEnvironment
from ferry.sync.definition import SyncDefinition, parse_sync
from ferry.sync.state import FileSyncState, SyncRun, SyncState
from ferry.sync.tick import rollback, run_sync
from ferry.transfer.models import parse_export_pipeline

EX_TEMPFAIL = 75  # sysexits.h: a temporary failure; the same command may succeed later
MAX_HOLDS = 5  # as the app's orchestration


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sync", help="run one tick of a gated sync of upstream tags",
                                   description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("sync_file", metavar="SYNC.json")
    parser.add_argument("--once", action="store_true", help="run one tick now (the only mode here)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be synced; move nothing")
    parser.add_argument("--state", metavar="FILE", help="what the sync remembers (default SYNC.state.json)")
    parser.add_argument("--pipelines", metavar="DIR",
                        help="where the export pipeline a sync targets is (NAME.json or exportPipelines/NAME.json)")
    parser.add_argument("--run-id", help="the run's id (default: the UTC time, YYYYMMDDHHMMSS)")
    parser.add_argument("--wait-on-limits", action="store_true",
                        help="when the registry asks to hold off, wait and resume (at most 5 times) instead of "
                             "exiting 75")
    parser.add_argument("--rollback", metavar="TAG", help="point TAG back at an earlier promotion (with --to)")
    parser.add_argument("--to", metavar="UNIQUE_TAG", help="the promotion to roll back to")
    add_insecure_option(parser)
    parser.add_argument("--json", action="store_true", help="print the run record as JSON")
    parser.set_defaults(handler=run)


def load(path: Path) -> SyncDefinition:
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"sync file {path} does not exist") from exc
    except ValueError as exc:
        raise UsageError(f"sync file {path} is not valid JSON: {exc}") from exc
    given = body.get("name") if isinstance(body, dict) else None
    return parse_sync(given if isinstance(given, str) else path.stem, body)


def with_pipeline(sync: SyncDefinition, directory: str | None) -> SyncDefinition:
    """``sync`` with the container of the export pipeline it targets, read from ``directory``."""
    if sync.export_pipeline is None:
        return sync
    if directory is None:
        raise UsageError(f"sync {sync.name} targets export pipeline {sync.export_pipeline!r}: give --pipelines DIR")
    _, body = find_pipeline(Path(directory), sync.export_pipeline, "export")
    return sync.through(parse_export_pipeline(sync.export_pipeline, body).target)


def tick_on_runner(sync: SyncDefinition, state: SyncState, env: JobEnvironment, *, run_id: str | None,
                   dry_run: bool, wait_on_limits: bool) -> SyncRun:
    """One tick through the app's ``sync_run`` orchestration on the local runner (the real replay
    engine), with this process's ``sync_tick``: the definition, its credentials and the state file
    never enter the orchestration's history. Holds are waited in real time with ``wait_on_limits``,
    else none (the record keeps ``retry_after``). A tick's error is raised as itself (its exit code)."""
    from orchestrations.sync import sync_instance_id, sync_run
    from runner import LocalOrchestrationRunner

    failures: list[FerryError] = []

    def sync_tick(payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return run_sync(sync, state, env, run_id=run_id or str(payload["runId"]),
                            dry_run=bool(payload.get("dryRun"))).to_json()
        except FerryError as exc:
            failures.append(exc)
            return {"error": str(exc)}

    with LocalOrchestrationRunner(orchestrators=[sync_run], activities={"sync_tick": sync_tick},
                                  real_time=wait_on_limits) as runner:
        result = runner.run(sync_run, {"name": sync.name, "dryRun": dry_run,
                                       "maxHolds": MAX_HOLDS if wait_on_limits else 0},
                            instance_id=sync_instance_id(sync.name))
    if failures:
        raise failures[-1]
    if result.status != "Completed" or not isinstance(result.output, dict):
        raise FerryError(f"sync {sync.name}: the orchestration ended {result.status}: {result.error}")
    return SyncRun.from_json(result.output)


def run(args: argparse.Namespace) -> int:
    path = Path(args.sync_file)
    sync = with_pipeline(load(path), args.pipelines)
    env = cli_environment(args)
    if args.rollback or args.to:
        if not (args.rollback and args.to):
            raise UsageError("--rollback TAG needs --to UNIQUE_TAG")
        digest = rollback(sync, args.rollback, args.to, env)
        print(f"{sync.target_repository}:{args.rollback} -> {args.to} ({digest})")
        return 0
    if not args.once:
        raise UsageError("give --once: a tick runs now; scheduling is the Functions app's timer (or cron)")
    state = FileSyncState(args.state or path.with_suffix(".state.json"))
    record = tick_on_runner(sync, state, env, run_id=args.run_id, dry_run=args.dry_run,
                            wait_on_limits=args.wait_on_limits)
    if args.json:
        print_json(record.to_json())
    else:
        for tag in record.tags:
            detail = ", ".join(tag.promoted) or "; ".join(tag.reasons)
            sys.stdout.write(f"{tag.status:10} {sync.source_repository}:{tag.tag} {tag.digest or ''}"
                             + (f"  {detail}" if detail else "") + "\n")
        counts: dict[str, Any] = record.requests
        sys.stdout.write(f"run {record.run_id}: {len(record.tags)} tag(s); requests {counts}\n")
    if record.retry_after is not None:
        sys.stderr.write(f"ferry: sync: the registry {sync.source_registry} asked to hold off "
                         f"{record.retry_after:.0f} s; run the same --run-id {record.run_id} again after that "
                         "to resume\n")
        return EX_TEMPFAIL
    failed = any(t.status == "failed" for t in record.tags)
    return 1 if failed else 0
