"""``ferry export``, ``ferry import`` and ``ferry inspect``: the transfer archive, on a local file
or an Azure blob (``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`` or Azurite's
``http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB``)."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console

from ferry.archive.requests import export_requests, import_requests, parse_remaps, verify_imported
from ferry.archive.stores import BlockBlobStore
from ferry.cli.copy_command import add_transfer_options
from ferry.cli.locations import blob_cache, make_client
from ferry.cli.output import ProgressBar, human_bytes, print_json, print_summary, report_dict
from ferry.copy import CopyOptions, CopyReport, CopyRequest, copy_artifacts
from ferry.errors import UsageError
from ferry.oci import mediatypes as mt
from ferry.oci.layout import REF_NAME
from ferry.oci.manifest import parse_manifest, platform_string
from ferry.registry.credentials import Credentials
from ferry.registry.dockerconfig import resolve_credentials
from ferry.storage import BlobLocation, ManagedIdentityAuth, SasTokenAuth, StorageAuth, auto_auth
from ferry.transports.archive import ArchiveSource, delete_archive, is_blob_url, open_destination, open_source
from ferry.transports.base import Destination, Source
from ferry.transports.layout import is_fallback_tag
from ferry.transports.registry import RegistryDestination, RegistrySource

DEFAULT_MAX_ARTIFACTS = 10_000


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export images and artifacts from a registry into one archive (file or blob)",
        description="Write REFs (HOST/repo, HOST/repo:tag, HOST/repo:GLOB or HOST/repo@digest, one registry) "
                    "with their referrers into an OCI layout tar that skopeo reads as oci-archive:FILE:repo:tag.")
    export.add_argument("refs", nargs="+", metavar="REF")
    export.add_argument("--to", required=True, metavar="ARCHIVE", help="a file path or a blob URL")
    export.add_argument("--overwrite", action="store_true", help="replace ARCHIVE if it exists (OverwriteBlobs)")
    export.add_argument("--src-creds", metavar="USER:PASS", help="source registry credentials")
    export.add_argument("--baseline", metavar="ARCHIVE|CATALOG.json",
                        help="leave out blobs that this earlier archive (or its `ferry inspect --json`) carried")
    export.add_argument("--max-artifacts", type=int, default=DEFAULT_MAX_ARTIFACTS, metavar="N",
                        help=f"refuse to export more than N artifacts (default {DEFAULT_MAX_ARTIFACTS})")
    export.add_argument("--include-foreign-layers", action="store_true",
                        help="ship non-distributable (foreign) layers inside the archive, fetched from their URLs, "
                             "for air-gapped targets (default: keep only their URLs, as registries do)")
    _common(export)
    export.set_defaults(handler=run_export)

    imp = subparsers.add_parser(
        "import", help="import every artifact of an archive (file or blob) into a registry",
        description="Copy every repo:tag of ARCHIVE to REGISTRY[/PREFIX]/repo:tag, verifying every byte.")
    imp.add_argument("archive", metavar="ARCHIVE")
    imp.add_argument("--to", required=True, metavar="REGISTRY[/PREFIX]")
    imp.add_argument("--remap", action="append", default=[], metavar="FROM=TO",
                     help="import repository FROM (and FROM/...) as TO (repeatable; applied before PREFIX)")
    imp.add_argument("--overwrite-tags", action="store_true", help="replace target tags that point elsewhere")
    imp.add_argument("--delete-source-on-success", action="store_true",
                     help="delete ARCHIVE once every artifact is verified present in the target")
    imp.add_argument("--dest-creds", metavar="USER:PASS", help="target registry credentials")
    _common(imp)
    imp.set_defaults(handler=run_import)

    inspect = subparsers.add_parser("inspect", help="list what an archive (file or blob) holds")
    inspect.add_argument("archive", metavar="ARCHIVE")
    add_storage_options(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON (usable as an export --baseline)")
    inspect.set_defaults(handler=run_inspect)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--continue-on-errors", action="store_true",
                        help="skip and report failing artifacts, transfer the rest (ContinueOnErrors)")
    add_storage_options(parser)
    add_transfer_options(parser)


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """How to reach an archive blob, as ACR's storageAccessMode: a SAS (in the URL or in Key Vault),
    a connection string, or a managed identity."""
    parser.add_argument("--connection-string", action="append", default=[], metavar="CS",
                        help="storage connection string (repeatable; default $AZURE_STORAGE_CONNECTION_STRING)")
    parser.add_argument("--sas-secret", metavar="URI",
                        help="Key Vault secret URI holding the archive's SAS token (storageAccessMode SasToken)")
    parser.add_argument("--managed-identity", action="store_true",
                        help="reach the archive with DefaultAzureCredential (storageAccessMode ManagedIdentity)")


def archive_auth(target: str, args: argparse.Namespace) -> StorageAuth | None:
    """The storage auth for a blob URL ``target`` from the options; None for a local file."""
    if not is_blob_url(target):
        return None
    if args.sas_secret and args.managed_identity:
        raise UsageError("give either --sas-secret or --managed-identity, not both")
    if args.sas_secret:
        return SasTokenAuth(secret_uri=args.sas_secret)
    if args.managed_identity:
        return ManagedIdentityAuth()
    return auto_auth(BlobLocation.parse(target), args.connection_string)


def _run_copy(source: Source, destination: Destination, requests: list[CopyRequest],
              args: argparse.Namespace, overwrite_tags: bool = False,
              include_foreign_layers: bool = False) -> CopyReport:
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    options = CopyOptions(overwrite_tags=overwrite_tags, include_referrers=not args.no_referrers,
                          parallelism=args.parallel, all_or_nothing=not args.continue_on_errors,
                          include_foreign_layers=include_foreign_layers)
    console = Console(stderr=True)
    bar = ProgressBar(console, f"{len(requests)} artifact(s)") if console.is_terminal and not args.json else None
    with bar if bar else nullcontext():
        options.progress = bar
        return copy_artifacts(source, destination, requests, options)


def _finish(report: CopyReport, args: argparse.Namespace, extra: dict[str, Any] | None = None) -> int:
    if args.json:
        print_json({**report_dict(report), **(extra or {})})
    else:
        print_summary(report)
        for key, value in (extra or {}).items():
            if value is not None:
                print(f"{key}: {value}")
    return 0 if report.ok else 1


# -- export ----------------------------------------------------------------------------------
def load_baseline(text: str, args: argparse.Namespace) -> frozenset[str]:
    """Digests carried by an earlier archive, or listed in its ``ferry inspect --json`` catalog."""
    if not is_blob_url(text) and text.endswith(".json"):
        try:
            data = json.loads(Path(text).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--baseline {text!r}: cannot read the catalog: {exc}") from exc
        digests = data.get("blob_digests") if isinstance(data, dict) else None
        if not isinstance(digests, list):
            raise UsageError(f"--baseline {text!r} has no 'blob_digests' list (make it with ferry inspect --json)")
        return frozenset(d for d in digests if isinstance(d, str))
    with open_source(text, storage_auth=archive_auth(text, args)) as baseline:
        return frozenset(name.split("/", 1)[1].replace("/", ":", 1) for name in baseline.members
                         if name.startswith("blobs/"))


def run_export(args: argparse.Namespace) -> int:
    if args.max_artifacts < 1:
        raise UsageError("--max-artifacts must be at least 1")
    baseline = load_baseline(args.baseline, args) if args.baseline else frozenset()
    registry = args.refs[0].removeprefix("docker://").partition("/")[0]
    explicit = Credentials.parse(args.src_creds) if args.src_creds else None
    with ExitStack() as stack:
        client = stack.enter_context(make_client(registry, resolve_credentials(registry, explicit),
                                                 args.insecure, args.parallel))
        source = RegistrySource(client, blob_cache())
        _, requests = export_requests(source, args.refs, args.max_artifacts)
        destination = stack.enter_context(open_destination(
            args.to, overwrite=args.overwrite, hold=True, baseline=baseline, storage_auth=archive_auth(args.to, args)))
        report = _run_copy(source, destination, requests, args, include_foreign_layers=args.include_foreign_layers)
        publish = report.ok or (args.continue_on_errors and any(a.ok for a in report.artifacts))
        if publish:
            destination.publish()
    extra: dict[str, Any] = {"archive": args.to if publish else None}
    if publish:
        extra["catalog_digest"] = destination.metadata.get("ferrycatalogdigest")
    if isinstance(destination.store, BlockBlobStore):
        extra["blocks_staged"] = destination.store.blocks_staged
        extra["blocks_skipped"] = destination.store.blocks_skipped
    return _finish(report, args, extra)


# -- import ----------------------------------------------------------------------------------
def run_import(args: argparse.Namespace) -> int:
    registry, _, prefix = args.to.removeprefix("docker://").partition("/")
    if not registry:
        raise UsageError(f"--to {args.to!r} needs a registry host")
    remaps = parse_remaps(args.remap)
    deleted = None
    with ExitStack() as stack:
        source = stack.enter_context(open_source(args.archive, storage_auth=archive_auth(args.archive, args)))
        requests = import_requests(source, prefix.strip("/"), remaps)
        explicit = Credentials.parse(args.dest_creds) if args.dest_creds else None
        client = stack.enter_context(make_client(registry, resolve_credentials(registry, explicit),
                                                 args.insecure, args.parallel))
        destination = RegistryDestination(client, blob_cache())
        report = _run_copy(source, destination, requests, args, overwrite_tags=args.overwrite_tags)
        if args.delete_source_on_success and report.ok:
            verify_imported(destination, source, requests)
            source.close()
            delete_archive(args.archive, archive_auth(args.archive, args))
            deleted = args.archive
    return _finish(report, args, {"deleted_source": deleted} if args.delete_source_on_success else None)


# -- inspect ---------------------------------------------------------------------------------
def inspect_archive(source: ArchiveSource) -> dict[str, Any]:
    """Artifacts (name, digest, media type, platforms, size), blobs, bytes and shared layer bytes."""
    artifacts = []
    users: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for entry in source.index.entries:
        name = entry.annotations.get(REF_NAME, "")
        if is_fallback_tag(name.rpartition(":")[2]):
            continue
        platforms: list[str] = []
        seen: set[str] = set()
        stack = [entry]
        while stack:
            descriptor = stack.pop()
            if descriptor.digest in seen:
                continue
            seen.add(descriptor.digest)
            parsed = parse_manifest(source.fetch_manifest("", descriptor), descriptor.media_type)
            for child in parsed.manifests:
                if child.platform and platform_string(child.platform) != "unknown/unknown":
                    platforms.append(platform_string(child.platform))
                stack.append(child)
            for blob in parsed.blobs:
                if not (mt.is_non_distributable(blob.media_type) and blob.urls) or source.has_entry(blob.digest):
                    users.setdefault(blob.digest, set()).add(name)
                    sizes[blob.digest] = blob.size
                    seen.add(blob.digest)
        artifacts.append({"name": name, "digest": entry.digest, "mediaType": entry.media_type,
                          "platforms": platforms, "size": sum(sizes.get(d, 0) for d in seen)})
    blobs = {n: m for n, m in source.members.items() if n.startswith("blobs/")}
    return {
        "archive": source.reader.name,
        "artifacts": artifacts,
        "blobs": len(blobs),
        "bytes": sum(m.size for m in blobs.values()),
        "shared_bytes": sum(sizes[d] for d, names in users.items() if len(names) > 1),
        "blob_digests": sorted(n.split("/", 1)[1].replace("/", ":", 1) for n in blobs),
    }


def run_inspect(args: argparse.Namespace) -> int:
    with open_source(args.archive, storage_auth=archive_auth(args.archive, args)) as source:
        data = inspect_archive(source)
    if args.json:
        print_json(data)
        return 0
    for artifact in data["artifacts"]:
        platforms = f" [{', '.join(artifact['platforms'])}]" if artifact["platforms"] else ""
        print(f"{artifact['name']}  {artifact['digest']}  {artifact['mediaType']}  "
              f"{human_bytes(artifact['size'])}{platforms}")
    print(f"{len(data['artifacts'])} artifacts, {data['blobs']} blobs, {human_bytes(data['bytes'])}; "
          f"{human_bytes(data['shared_bytes'])} in layers shared between artifacts")
    return 0
