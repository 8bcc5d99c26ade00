"""``ferry copy SRC DST``: registry → registry (and OCI layouts), with ``az acr import`` semantics."""

from __future__ import annotations

import argparse

from cli.locations import (
    Location,
    add_password_stdin,
    cli_environment,
    credentials_from,
    location_endpoint,
    parse_location,
)
from cli.running import add_transfer_options, job_options, print_outcome, run_with_progress
from ferry.errors import UsageError
from ferry.jobs.spec import Artifacts, JobSpec, RepositoryTags, Selection
from ferry.plan import CopyRequest
from ferry.registry.credentials import Credentials


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
    add_password_stdin(parser, "source", "destination")
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


def _credentials(args: argparse.Namespace) -> tuple[Credentials | None, Credentials | None]:
    if args.password_stdin and args.dest_password_stdin:
        raise UsageError("stdin holds one password: use --password-stdin or --dest-password-stdin, not both")
    source = credentials_from(args.src_creds, args.username, args.password, stdin=args.password_stdin,
                              flags="-u/-p or --src-creds")
    destination = credentials_from(args.dest_creds, None, None, stdin=args.dest_password_stdin,
                                   flags="--dest-creds")
    return source, destination


def selection_for(src: Location, dst: Location, args: argparse.Namespace, *,
                  prefix_mode: bool = False) -> Selection:
    """What one SRC copies to DST under the tag options, validating their combination.

    In ``prefix_mode`` (several sources) DST's repository part is a prefix for each source's path.
    """
    if src.repository is None:
        raise UsageError(f"SRC {src.text!r} names no repository")
    if prefix_mode:
        target_repository = f"{dst.repository}/{src.repository}" if dst.repository else src.repository
    else:
        target_repository = dst.repository or src.repository
    if args.all_tags or args.tags is not None:
        if src.tag_given or src.digest:
            raise UsageError(f"--all-tags/--tags copy a whole repository: give SRC {src.text!r} without tag or digest")
        if dst.tag_given or dst.digest:
            raise UsageError("--all-tags/--tags keep the source tag names: give DST without a tag")
        try:
            return RepositoryTags(src.repository, target_repository, args.tags, keep_tags=not args.untagged)
        except UsageError as exc:
            raise UsageError(f"--tags: {exc}") from exc
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
    return Artifacts((CopyRequest(src.repository, reference, target_repository, target_tags),))


def run(args: argparse.Namespace) -> int:
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
    env = cli_environment(args)
    source_credentials, destination_credentials = _credentials(args)
    spec = JobSpec(
        source=location_endpoint(src, source_credentials, env, "source", args, azure_ad=args.src_azure_ad),
        destination=location_endpoint(dst, destination_credentials, env, "destination", args,
                                      azure_ad=args.dest_azure_ad),
        select=tuple(selection_for(each, dst, args, prefix_mode=prefix_mode) for each in sources),
        # Each artifact of a copy stands alone, as with az acr import: one failing leaves the rest.
        options=job_options(args, overwrite_tags=args.force, platforms=tuple(args.platform or ()),
                            include_foreign_layers=args.include_foreign_layers, continue_on_errors=True))
    return print_outcome(run_with_progress(spec, env, args), args)
