"""``ferry copy-blob SRC_URL DST_URL``: copy a blob between storage accounts (server-side or relay)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import nullcontext

from rich.console import Console

from cli.locations import cli_environment
from cli.output import ProgressBar, human_bytes, print_json
from ferry.azure.blob import DEFAULT_BLOCK_SIZE, BlobLocation, MiB, StorageAuth
from ferry.azure.blobcopy import copy_blob
from ferry.errors import UsageError
from ferry.jobs.endpoints import JobEnvironment, storage_auth
from ferry.jobs.spec import StorageAccess


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "copy-blob", help="copy a blob (an archive) between storage accounts",
        description="Copy SRC_URL to DST_URL: server-side by default (the target pulls the source with a "
                    "read SAS), or --relay (Ferry reads ranges and stages blocks). Credentials: a SAS in "
                    "the URL, --connection-string / $AZURE_STORAGE_CONNECTION_STRING for the URL's "
                    "account, a SAS from a Key Vault secret, or DefaultAzureCredential.")
    parser.add_argument("source", metavar="SRC_URL")
    parser.add_argument("destination", metavar="DST_URL")
    parser.add_argument("--relay", action="store_true", help="copy through this machine (range reads, staged blocks)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing destination blob")
    parser.add_argument("--connection-string", action="append", default=[], metavar="CS",
                        help="storage connection string; repeat for both accounts (matched by AccountName)")
    parser.add_argument("--src-sas-secret", metavar="URI", help="Key Vault secret URI holding the source SAS")
    parser.add_argument("--dest-sas-secret", metavar="URI", help="Key Vault secret URI holding the destination SAS")
    parser.add_argument("--managed-identity", action="store_true",
                        help="authenticate both accounts with DefaultAzureCredential (managed identity)")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE // MiB, metavar="MIB",
                        help="relay block size in MiB (default 4)")
    parser.add_argument("--parallel", type=int, default=4,
                        help="relay blocks in flight (default 4: each holds a block in memory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def _auth(url: str, secret: str | None, args: argparse.Namespace, env: JobEnvironment) -> StorageAuth:
    if secret and args.managed_identity:
        raise UsageError("give either --managed-identity or a --*-sas-secret, not both")
    access = (StorageAccess("SasToken", secret) if secret
              else StorageAccess("ManagedIdentity") if args.managed_identity else StorageAccess("Auto"))
    auth = storage_auth(url, access, env)
    assert auth is not None
    return auth


def run(args: argparse.Namespace) -> int:
    if args.block_size < 1:
        raise UsageError("--block-size must be at least 1 (MiB)")
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    src = BlobLocation.parse(args.source)
    dst = BlobLocation.parse(args.destination)
    env = cli_environment(args)
    console = Console(stderr=True)
    bar = ProgressBar(console, "copy-blob") if console.is_terminal and not args.json else None
    with bar if bar else nullcontext():
        result = copy_blob(src, dst, src_auth=_auth(args.source, args.src_sas_secret, args, env),
                           dst_auth=_auth(args.destination, args.dest_sas_secret, args, env),
                           mode="relay" if args.relay else "server", overwrite=args.overwrite,
                           block_size=args.block_size * MiB, parallel=args.parallel, progress=bar)
    if args.json:
        print_json(dataclasses.asdict(result))
    else:
        extra = (f", {result.blocks_staged} blocks staged, {result.blocks_skipped} already staged"
                 if result.mode == "relay" else "")
        sys.stdout.write(f"copied {result.source} -> {result.destination} ({result.mode}, "
                         f"{human_bytes(result.size)}{extra}) in {result.seconds:.1f}s\n")
    return 0
