"""``ferry copy SRC DST``: registry → registry (and OCI layouts), with ``az acr import`` semantics."""

from __future__ import annotations

import argparse
import re
from contextlib import ExitStack, nullcontext

from rich.console import Console

from ferry.cli.locations import Location, blob_cache, make_client, parse_location
from ferry.cli.output import ProgressBar, print_json, print_summary, report_dict
from ferry.copy import CopyOptions, CopyReport, CopyRequest, copy_artifacts
from ferry.errors import UsageError
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from ferry.registry.dockerconfig import resolve_credentials
from ferry.transports.base import Destination, Source
from ferry.transports.layout import LayoutDestination, LayoutSource
from ferry.transports.registry import RegistryDestination, RegistrySource


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "copy", help="copy images and artifacts between registries (like az acr import)",
        description="Copy an image, index or artifact with every platform and its referrers. "
                    "SRC and DST are registry references (docker://optional) or oci:DIR[:REPO[:TAG]].")
    parser.add_argument("sources", nargs="+", metavar="SRC",
                        help="one or more sources on one registry; with several, DST is HOST[:PORT][/PREFIX]")
    parser.add_argument("destination", metavar="DST",
                        help="target reference; a bare HOST[:PORT] keeps the source repository and tag")
    parser.add_argument("-u", "--username", help="source registry username (as az acr import)")
    parser.add_argument("-p", "--password", help="source registry password or token")
    parser.add_argument("--src-creds", metavar="USER:PASS", help="source credentials (skopeo style)")
    parser.add_argument("--dest-creds", metavar="USER:PASS", help="target credentials")
    parser.add_argument("--src-azure-ad", action="store_true",
                        help="authenticate to the source with Azure AD (DefaultAzureCredential)")
    parser.add_argument("--dest-azure-ad", action="store_true",
                        help="authenticate to the target with Azure AD (DefaultAzureCredential)")
    parser.add_argument("--force", action="store_true", help="replace target tags that point elsewhere")
    parser.add_argument("--untagged", action="store_true", help="copy by digest without writing a tag")
    parser.add_argument("--all-tags", action="store_true", help="copy every tag of the source repository")
    parser.add_argument("--tags", metavar="REGEX", help="copy the source tags matching REGEX (full match)")
    parser.add_argument("--platform", action="append", metavar="OS/ARCH[/VARIANT]",
                        help="copy only these platforms of a multi-arch image (repeatable)")
    parser.add_argument("--include-foreign-layers", action="store_true",
                        help="copy non-distributable (foreign) layers too, fetched from their URLs if the source "
                             "lacks them (default: keep only their URLs, as registries do)")
    add_transfer_options(parser)
    parser.set_defaults(handler=run)


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """Options every transferring command shares: referrers, plain HTTP hosts, parallelism, JSON."""
    parser.add_argument("--no-referrers", action="store_true", help="leave signatures, SBOMs and other referrers")
    parser.add_argument("--insecure", action="append", default=[], metavar="HOST",
                        help="use plain HTTP for HOST (loopback hosts always are)")
    parser.add_argument("--parallel", type=int, default=8, help="blobs copied at once (default 8)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _source_credentials(args: argparse.Namespace) -> Credentials | None:
    if args.src_creds and (args.username or args.password):
        raise UsageError("give either -u/-p or --src-creds, not both")
    if args.src_creds:
        return Credentials.parse(args.src_creds)
    if args.username or args.password:
        return Credentials.from_user_pass(args.username, args.password)
    return None


def _open_source(location: Location, args: argparse.Namespace, stack: ExitStack) -> Source:
    if location.kind == "oci":
        return LayoutSource(location.registry)
    creds = resolve_credentials(location.registry, _source_credentials(args), azure_ad=args.src_azure_ad)
    client = stack.enter_context(make_client(location.registry, creds, args.insecure, args.parallel))
    _sign_in(client, creds)
    return RegistrySource(client, blob_cache())


def _open_destination(location: Location, args: argparse.Namespace, stack: ExitStack) -> Destination:
    if location.kind == "oci":
        return LayoutDestination(location.registry)
    explicit = Credentials.parse(args.dest_creds) if args.dest_creds else None
    creds = resolve_credentials(location.registry, explicit, azure_ad=args.dest_azure_ad)
    client = stack.enter_context(make_client(location.registry, creds, args.insecure, args.parallel))
    _sign_in(client, creds)
    return RegistryDestination(client, blob_cache())


def _sign_in(client: RegistryClient, creds: Credentials) -> None:
    """Check given credentials up front: rejected ones end the run with exit code 4, not as
    one failed artifact (exit 1) each. Anonymous access is not checked: registries that allow
    anonymous pulls may still answer 401 at ``/v2/``."""
    if not creds.is_anonymous:
        client.check_access()


def build_requests(source: Source, src: Location, dst: Location, args: argparse.Namespace,
                   *, prefix_mode: bool = False) -> list[CopyRequest]:
    """Turn one SRC, DST and the tag options into copy requests, validating their combination.

    In ``prefix_mode`` (several sources) DST's repository part is a prefix for each source's path.
    """
    if src.repository is None:
        raise UsageError(f"SRC {src.text!r} names no repository")
    if prefix_mode:
        target_repository = f"{dst.repository}/{src.repository}" if dst.repository else src.repository
    else:
        target_repository = dst.repository or src.repository
    whole_repo = args.all_tags or args.tags is not None
    if whole_repo:
        if src.tag_given or src.digest:
            raise UsageError(f"--all-tags/--tags copy a whole repository: give SRC {src.text!r} without tag or digest")
        if dst.tag_given or dst.digest:
            raise UsageError("--all-tags/--tags keep the source tag names: give DST without a tag")
        try:
            pattern = re.compile(args.tags) if args.tags is not None else None
        except re.error as exc:
            raise UsageError(f"--tags {args.tags!r} is not a valid regular expression: {exc}") from exc
        tags = sorted(t for t in source.list_tags(src.repository) if pattern is None or pattern.fullmatch(t))
        tags = [t for t in tags if not re.fullmatch(r"sha(256|512)-[0-9a-f]+", t)]
        if not tags:
            raise UsageError(f"no tag of {src.registry}/{src.repository} matches"
                             + (f" {args.tags!r}" if args.tags else ""))
        return [CopyRequest(src.repository, t, target_repository, () if args.untagged else (t,)) for t in tags]
    reference = src.reference
    if reference is None:
        raise UsageError(f"SRC {src.text!r} needs a tag or digest")
    if dst.digest:
        raise UsageError(f"DST {args.destination!r}: a target cannot be given by digest; use a tag or --untagged")
    if args.untagged:
        if dst.tag_given:
            raise UsageError("--untagged copies without a tag: give DST without a tag")
        target_tags: tuple[str, ...] = ()
    elif dst.tag_given and dst.tag:
        target_tags = (dst.tag,)
    elif src.tag:
        target_tags = (src.tag,)
    else:
        raise UsageError(f"SRC {src.text!r} is a digest: give DST a tag, or --untagged")
    return [CopyRequest(src.repository, reference, target_repository, target_tags)]


def run(args: argparse.Namespace) -> int:
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    sources = [parse_location(text) for text in args.sources]
    dst = parse_location(args.destination)
    prefix_mode = len(sources) > 1
    if prefix_mode:
        places = {(s.kind, s.registry) for s in sources}
        if len(places) > 1:
            raise UsageError("several SRCs must all be on one registry (or in one layout); run ferry copy per registry")
        if dst.tag_given or dst.digest:
            raise UsageError(f"DST {args.destination!r}: with several SRCs, give HOST[:PORT][/PREFIX] without a tag")
    src = sources[0]
    options = CopyOptions(overwrite_tags=args.force, include_referrers=not args.no_referrers,
                          platforms=frozenset(args.platform) if args.platform else None, parallelism=args.parallel,
                          include_foreign_layers=args.include_foreign_layers)
    with ExitStack() as stack:
        source = _open_source(src, args, stack)
        destination = _open_destination(dst, args, stack)
        requests = [r for each in sources for r in build_requests(source, each, dst, args, prefix_mode=prefix_mode)]
        console = Console(stderr=True)
        show_bar = console.is_terminal and not args.json
        bar = ProgressBar(console, f"{len(requests)} artifact(s)") if show_bar else None
        with bar if bar else nullcontext():
            options.progress = bar
            report: CopyReport = copy_artifacts(source, destination, requests, options)
    if args.json:
        print_json(report_dict(report))
    else:
        print_summary(report)
    return 0 if report.ok else 1
