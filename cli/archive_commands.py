"""``ferry export``, ``ferry import`` and ``ferry inspect``: the transfer archive, on a local file
or an Azure blob (``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`` or Azurite's
``http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB``)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

from cli.locations import add_password_stdin, cli_environment, credentials_from, registry_endpoint
from cli.output import human_bytes, print_json
from cli.running import (
    add_storage_options,
    add_transfer_options,
    job_options,
    print_outcome,
    run_with_progress,
    storage_access,
)
from ferry.copy import plan_copy
from ferry.errors import UsageError
from ferry.jobs.endpoints import open_job_source
from ferry.jobs.selection import import_requests, parse_remaps
from ferry.jobs.spec import ArchiveContents, ArchiveEndpoint, ExportRefs, JobSpec
from ferry.plan import CopyOptions
from ferry.transports.archive import ArchiveSource


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export images and artifacts from a registry into one archive (file or blob)",
        description="Write REFs (HOST/repo, HOST/repo:tag, HOST/repo:GLOB or HOST/repo@digest, one registry) "
                    "with their referrers into an OCI layout tar that skopeo reads as oci-archive:FILE:repo:tag.")
    export.add_argument("refs", nargs="+", metavar="REF")
    export.add_argument("--to", required=True, metavar="ARCHIVE", help="a file path or a blob URL")
    export.add_argument("--overwrite", action="store_true", help="replace ARCHIVE if it exists (OverwriteBlobs)")
    export.add_argument("--src-creds", metavar="USER:PASS", help="source registry credentials")
    add_password_stdin(export, "source")
    export.add_argument("--baseline", metavar="ARCHIVE|CATALOG.json",
                        help="leave out blobs that this earlier archive (or its `ferry inspect --json`) carried")
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
    add_password_stdin(imp, "destination")
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


# -- export ----------------------------------------------------------------------------------
def _export_refs(refs: list[str]) -> tuple[str, tuple[str, ...]]:
    """The one registry of ``HOST/repo[:tag|:GLOB|@digest]`` REFs, and the REFs without it."""
    registries: set[str] = set()
    relative = []
    for ref in refs:
        host, _, rest = ref.removeprefix("docker://").partition("/")
        if not rest or not ("." in host or ":" in host or host == "localhost"):
            raise UsageError(f"REF {ref!r} must be HOST/repo[:tag|:GLOB|@digest]")
        registries.add(host)
        relative.append(rest)
    if len(registries) != 1:
        raise UsageError(f"every REF must come from one registry; got {', '.join(sorted(registries))}")
    return registries.pop(), tuple(relative)


def run_export(args: argparse.Namespace) -> int:
    registry, refs = _export_refs(args.refs)
    env = cli_environment(args)
    explicit = credentials_from(args.src_creds, None, None, stdin=args.password_stdin, flags="--src-creds")
    spec = JobSpec(source=registry_endpoint(registry, explicit, env, "source", args),
                   destination=ArchiveEndpoint(args.to, storage_access(args), overwrite=args.overwrite,
                                               baseline=args.baseline),
                   select=(ExportRefs(refs),),
                   options=job_options(args, include_foreign_layers=args.include_foreign_layers))
    outcome = run_with_progress(spec, env, args)
    extra: dict[str, Any] = {"archive": outcome.published}
    if outcome.published:
        extra["catalog_digest"] = outcome.catalog_digest
    if outcome.blocks_staged is not None:
        extra["blocks_staged"] = outcome.blocks_staged
        extra["blocks_skipped"] = outcome.blocks_skipped
    return print_outcome(outcome, args, extra)


# -- import ----------------------------------------------------------------------------------
def run_import(args: argparse.Namespace) -> int:
    registry, _, prefix = args.to.removeprefix("docker://").partition("/")
    if not registry:
        raise UsageError(f"--to {args.to!r} needs a registry host")
    env = cli_environment(args)
    explicit = credentials_from(args.dest_creds, None, None, stdin=args.dest_password_stdin, flags="--dest-creds")
    spec = JobSpec(source=ArchiveEndpoint(args.archive, storage_access(args),
                                          delete_on_success=args.delete_source_on_success),
                   destination=registry_endpoint(registry, explicit, env, "destination", args),
                   select=(ArchiveContents(prefix.strip("/"), parse_remaps(args.remap)),),
                   options=job_options(args, overwrite_tags=args.overwrite_tags))
    outcome = run_with_progress(spec, env, args)
    return print_outcome(outcome, args, {"deleted_source": outcome.deleted_source, "kept_source": outcome.kept_source}
                         if args.delete_source_on_success else None)


# -- inspect ---------------------------------------------------------------------------------
def inspect_archive(source: ArchiveSource) -> dict[str, Any]:
    """Artifacts (name, digest, media type, platforms, size), blobs, bytes and shared layer bytes,
    from the engine's own walk of the archive (no destination, no referrers)."""
    plan = plan_copy(source, None, import_requests(source, "", ()), CopyOptions(include_referrers=False))
    artifacts = []
    users: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for artifact in plan.artifacts:
        name = artifact.request.source_label
        for digest, blob in artifact.blobs.items():
            users.setdefault(digest, set()).add(name)
            sizes[digest] = blob.size
        artifacts.append({"name": name, "digest": artifact.result.digest, "mediaType": artifact.result.media_type,
                          "platforms": artifact.result.platforms,
                          "size": sum(b.size for b in artifact.blobs.values()),
                          **({"error": artifact.result.error} if artifact.failed else {})})
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
    endpoint = ArchiveEndpoint(args.archive, storage_access(args))
    with ExitStack() as stack:
        source = open_job_source(endpoint, cli_environment(args), stack)
        assert isinstance(source, ArchiveSource)
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
