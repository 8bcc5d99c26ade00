"""What every transferring command shares: its options, building the job's options and storage
access from them, running the job with a progress bar, and printing the outcome."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any

from rich.console import Console

from cli.output import ProgressBar, print_json, print_summary, report_dict
from ferry.errors import UsageError
from ferry.jobs.endpoints import JobEnvironment
from ferry.jobs.phases import JobOutcome, run_job
from ferry.jobs.spec import JobOptions, JobSpec, StorageAccess
from ferry.settings import DEFAULT_MAX_ARTIFACTS


def add_insecure_option(parser: argparse.ArgumentParser) -> None:
    """``--insecure HOST`` (repeatable): every command that talks to a registry has it."""
    parser.add_argument("--insecure", action="append", default=[], metavar="HOST",
                        help="use plain HTTP for HOST (loopback hosts always are)")


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """Options every transferring command shares: referrers, plain HTTP hosts, parallelism, limits, JSON."""
    parser.add_argument("--no-referrers", action="store_true", help="leave signatures, SBOMs and other referrers")
    add_insecure_option(parser)
    parser.add_argument("--parallel", type=int, default=8, help="blobs copied at once (default 8)")
    parser.add_argument("--max-artifacts", type=int, default=DEFAULT_MAX_ARTIFACTS, metavar="N",
                        help=f"refuse to copy more than N artifacts (default {DEFAULT_MAX_ARTIFACTS})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """How to reach an archive blob, as ACR's storageAccessMode: a SAS (in the URL or in Key Vault),
    a connection string, or a managed identity."""
    parser.add_argument("--connection-string", action="append", default=[], metavar="CS",
                        help="storage connection string (repeatable; default $AZURE_STORAGE_CONNECTION_STRING)")
    parser.add_argument("--sas-secret", metavar="URI",
                        help="Key Vault secret URI holding the archive's SAS token (storageAccessMode SasToken)")
    parser.add_argument("--managed-identity", action="store_true",
                        help="reach the archive with DefaultAzureCredential (storageAccessMode ManagedIdentity)")


def storage_access(args: argparse.Namespace) -> StorageAccess:
    if args.sas_secret and args.managed_identity:
        raise UsageError("give either --sas-secret or --managed-identity, not both")
    if args.sas_secret:
        return StorageAccess("SasToken", args.sas_secret)
    return StorageAccess("ManagedIdentity") if args.managed_identity else StorageAccess("Auto")


def job_options(args: argparse.Namespace, **extra: Any) -> JobOptions:
    """The job's options from the shared command-line options, plus the command's own."""
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if args.max_artifacts < 1:
        raise UsageError("--max-artifacts must be at least 1")
    base: dict[str, Any] = {"include_referrers": not args.no_referrers, "parallelism": args.parallel,
                            "max_artifacts": args.max_artifacts,
                            "continue_on_errors": bool(getattr(args, "continue_on_errors", False))}
    return JobOptions(**{**base, **extra})


def run_with_progress(spec: JobSpec, env: JobEnvironment, args: argparse.Namespace) -> JobOutcome:
    """Run the job here, with a progress bar on a terminal (never with --json)."""
    console = Console(stderr=True)
    bar = ProgressBar(console, "copying") if console.is_terminal and not args.json else None
    with bar if bar else nullcontext():
        return run_job(spec, env, progress=bar)


def print_outcome(outcome: JobOutcome, args: argparse.Namespace, extra: dict[str, Any] | None = None) -> int:
    """Print the report (text or JSON) with ``extra`` fields; the exit code: 0 all copied, 1 not."""
    extra = {**({"skipped": outcome.skipped} if outcome.skipped else {}), **(extra or {})}
    if args.json:
        print_json({**report_dict(outcome.report), **extra})
    else:
        for reason in outcome.skipped:
            print(f"SKIPPED {reason}")
        print_summary(outcome.report)
        for key, value in extra.items():
            if value is not None and key != "skipped":
                print(f"{key}: {value}")
    return exit_code(outcome)


def exit_code(outcome: JobOutcome) -> int:
    """0 when everything copied. When every artifact that failed on its own failed for one kind of
    reason, that reason's code (3 registry, 4 authentication, 5 not found, 6 integrity, 7 conflict);
    with different reasons, or only skipped and held-back artifacts, 1."""
    if outcome.ok:
        return 0
    codes = {a.exit_code for a in outcome.report.artifacts if not a.ok and a.exit_code is not None}
    return codes.pop() if len(codes) == 1 and not outcome.skipped else 1
