"""``ferry export``, ``ferry import`` and ``ferry inspect``: the transfer archive on a local file."""

from __future__ import annotations

import argparse
from contextlib import ExitStack, nullcontext
from typing import Any

from rich.console import Console

from ferry.cli.copy_command import add_transfer_options
from ferry.cli.locations import blob_cache, make_client, parse_location, resolve_credentials
from ferry.cli.output import ProgressBar, human_bytes, print_json, print_summary, report_dict
from ferry.copy import CopyOptions, CopyReport, CopyRequest, copy_artifacts
from ferry.errors import UsageError
from ferry.oci import mediatypes as mt
from ferry.oci.layout import REF_NAME
from ferry.oci.manifest import parse_manifest, platform_string
from ferry.reference import is_valid_repository
from ferry.registry.credentials import Credentials
from ferry.transports.archive import ArchiveFileDestination, ArchiveFileSource
from ferry.transports.base import Destination, Source
from ferry.transports.layout import is_fallback_tag
from ferry.transports.registry import RegistryDestination, RegistrySource


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export images and artifacts from a registry into one archive file",
        description="Write REFs (HOST/repo:tag, one registry) with their referrers into an OCI layout tar "
                    "that skopeo reads as oci-archive:FILE:repo:tag.")
    export.add_argument("refs", nargs="+", metavar="REF")
    export.add_argument("--to", required=True, metavar="FILE", help="the archive file to write")
    export.add_argument("--overwrite", action="store_true", help="replace FILE if it exists (OverwriteBlobs)")
    export.add_argument("--src-creds", metavar="USER:PASS", help="source registry credentials")
    _common(export)
    export.set_defaults(handler=run_export)

    imp = subparsers.add_parser(
        "import", help="import every artifact of an archive file into a registry",
        description="Copy every repo:tag of FILE to REGISTRY[/PREFIX]/repo:tag, verifying every byte.")
    imp.add_argument("archive", metavar="FILE")
    imp.add_argument("--to", required=True, metavar="REGISTRY[/PREFIX]")
    imp.add_argument("--overwrite-tags", action="store_true", help="replace target tags that point elsewhere")
    imp.add_argument("--dest-creds", metavar="USER:PASS", help="target registry credentials")
    _common(imp)
    imp.set_defaults(handler=run_import)

    inspect = subparsers.add_parser("inspect", help="list what an archive file holds")
    inspect.add_argument("archive", metavar="FILE")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=run_inspect)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--continue-on-errors", action="store_true",
                        help="skip and report failing artifacts, transfer the rest (ContinueOnErrors)")
    add_transfer_options(parser)


def _run_copy(source: Source, destination: Destination, requests: list[CopyRequest],
              args: argparse.Namespace, overwrite_tags: bool = False) -> CopyReport:
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    options = CopyOptions(overwrite_tags=overwrite_tags, include_referrers=not args.no_referrers,
                          parallelism=args.parallel)
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
    return 0 if report.ok else 1


def run_export(args: argparse.Namespace) -> int:
    locations = [parse_location(ref) for ref in args.refs]
    registries = {loc.registry for loc in locations}
    for ref, loc in zip(args.refs, locations, strict=True):
        if loc.kind != "registry" or loc.repository is None:
            raise UsageError(f"REF {ref!r} is not a registry reference HOST/repo:tag")
        if loc.digest and not loc.tag_given:
            raise UsageError(f"REF {ref!r}: export by digest alone is not supported yet; give a tag")
    if len(registries) != 1:
        raise UsageError(f"every REF must come from one registry; got {', '.join(sorted(registries))}")
    requests = [CopyRequest(loc.repository or "", loc.reference or "latest", loc.repository or "",
                            (loc.tag or "latest",)) for loc in locations]
    registry = registries.pop()
    explicit = Credentials.parse(args.src_creds) if args.src_creds else None
    with ExitStack() as stack:
        client = stack.enter_context(make_client(registry, resolve_credentials(registry, explicit),
                                                 args.insecure, args.parallel))
        destination = stack.enter_context(ArchiveFileDestination(args.to, overwrite=args.overwrite, hold=True))
        report = _run_copy(RegistrySource(client, blob_cache()), destination, requests, args)
        publish = report.ok or (args.continue_on_errors and any(a.ok for a in report.artifacts))
        if publish:
            destination.publish()
    return _finish(report, args, {"archive": args.to if publish else None})


def import_requests(source: ArchiveFileSource, prefix: str) -> list[CopyRequest]:
    """One request per ``repo:tag`` named in the archive's index.json (referrer fallbacks excluded)."""
    requests = []
    for entry in source.index.entries:
        name = entry.annotations.get(REF_NAME, "")
        repository, sep, tag = name.rpartition(":")
        if not sep or "/" in tag or not repository:
            raise UsageError(f"{source.name}: index.json entry {name or entry.digest!r} is not named repo:tag")
        if is_fallback_tag(tag):
            continue
        target = f"{prefix}/{repository}" if prefix else repository
        if not is_valid_repository(target):
            raise UsageError(f"target repository {target!r} is not valid")
        requests.append(CopyRequest(repository, tag, target, (tag,)))
    if not requests:
        raise UsageError(f"{source.name} names no artifact (no repo:tag in index.json)")
    return requests


def run_import(args: argparse.Namespace) -> int:
    registry, _, prefix = args.to.removeprefix("docker://").partition("/")
    if not registry:
        raise UsageError(f"--to {args.to!r} needs a registry host")
    with ExitStack() as stack:
        source = stack.enter_context(ArchiveFileSource(args.archive))
        requests = import_requests(source, prefix.strip("/"))
        explicit = Credentials.parse(args.dest_creds) if args.dest_creds else None
        client = stack.enter_context(make_client(registry, resolve_credentials(registry, explicit),
                                                 args.insecure, args.parallel))
        destination = RegistryDestination(client, blob_cache())
        report = _run_copy(source, destination, requests, args, overwrite_tags=args.overwrite_tags)
    return _finish(report, args)


def inspect_archive(source: ArchiveFileSource) -> dict[str, Any]:
    """Artifacts (name, digest, media type, platforms, size), blob count, bytes and shared layer bytes."""
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
                if not (mt.is_non_distributable(blob.media_type) and blob.urls):
                    users.setdefault(blob.digest, set()).add(name)
                    sizes[blob.digest] = blob.size
                    seen.add(blob.digest)
        artifacts.append({"name": name, "digest": entry.digest, "mediaType": entry.media_type,
                          "platforms": platforms, "size": sum(sizes.get(d, 0) for d in seen)})
    blobs = [m for n, m in source.members.items() if n.startswith("blobs/")]
    return {
        "archive": str(source.path),
        "artifacts": artifacts,
        "blobs": len(blobs),
        "bytes": sum(m.size for m in blobs),
        "shared_bytes": sum(sizes[d] for d, names in users.items() if len(names) > 1),
    }


def run_inspect(args: argparse.Namespace) -> int:
    with ArchiveFileSource(args.archive) as source:
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
