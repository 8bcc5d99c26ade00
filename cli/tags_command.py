"""``ferry tags REPO``: which tags a filter chain selects, to test a sync's filter before scheduling it.

The tags are listed through the registry client (or read from an OCI layout), then the chain of
:class:`ferry.sync.filters.TagFilter` runs over them; selected tags are printed one per line (sorted
as the chain sorts them), or with ``--json`` every tag with its verdict. Bad input exits 2.

Every pattern match has a time limit (:mod:`ferry.patterns`), so a pattern that backtracks
catastrophically ends in an error naming it and the tag rather than a hung terminal.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from cli.locations import cli_environment, credentials_from, location_endpoint, parse_location
from cli.output import print_json
from cli.running import add_insecure_option
from ferry.errors import UsageError
from ferry.jobs.endpoints import open_job_source
from ferry.sync.filters import FilterFieldError, FilterResult, TagFilter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tags", help="show which tags of a repository a filter chain selects",
        description="List REPO's tags and apply a sync's tag filter: --include and/or --semver, then "
                    "--exclude, then --latest. Patterns match the whole tag.")
    parser.add_argument("repository", metavar="REPO",
                        help="a repository without tag (registry/repo, docker:// optional, or oci:DIR:REPO)")
    parser.add_argument("--include", action="append", default=[], metavar="REGEX",
                        help="take tags fully matching REGEX (repeatable: any of them)")
    parser.add_argument("--semver", metavar="RANGE",
                        help="take versions in RANGE: '>=1.2, <2', '^1.4', '~1.4.2', '1.x', '1.2 - 1.4'")
    parser.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                        help="then drop tags fully matching REGEX (repeatable)")
    parser.add_argument("--latest", type=int, metavar="N",
                        help="then keep the N greatest (SemVer order when all are versions, else lexical)")
    parser.add_argument("--json", action="store_true", help="every tag with its verdict, as JSON")
    parser.add_argument("-u", "--username", help="registry username")
    parser.add_argument("-p", "--password", help="registry password or token")
    parser.add_argument("--creds", metavar="USER:PASS", help="registry credentials (skopeo style)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from stdin (with -u USER or --creds USER)")
    parser.add_argument("--azure-ad", action="store_true",
                        help="authenticate with Azure AD (DefaultAzureCredential)")
    add_insecure_option(parser)
    parser.set_defaults(handler=run)


def tag_filter(args: argparse.Namespace) -> TagFilter:
    """The chain the options describe; UsageError naming the option that is wrong."""
    try:
        return TagFilter(include=tuple(args.include), semver=args.semver, exclude=tuple(args.exclude),
                         latest=args.latest)
    except FilterFieldError as exc:
        option, _, index = exc.field.partition("[")
        which = f" #{int(index.rstrip(']')) + 1}" if index and len(getattr(args, option)) > 1 else ""
        raise UsageError(f"--{option}{which}: {exc.problem}") from exc


def run(args: argparse.Namespace) -> int:
    location = parse_location(args.repository)
    if location.repository is None:
        raise UsageError(f"REPO {args.repository!r} names no repository")
    if location.tag_given or location.digest:
        raise UsageError(f"REPO {args.repository!r}: give the repository without a tag or digest")
    chain = tag_filter(args)
    env = cli_environment(args)
    credentials = credentials_from(args.creds, args.username, args.password, stdin=args.password_stdin,
                                   flags="-u/-p or --creds")
    endpoint = location_endpoint(location, credentials, env, "source", args, azure_ad=args.azure_ad)
    with ExitStack() as stack:
        tags = open_job_source(endpoint, env, stack).list_tags(location.repository)
    result = chain.evaluate(tags)
    name = f"{location.registry}/{location.repository}"
    if not tags:
        sys.stderr.write(f"ferry: note: {name} has no tags (or does not exist)\n")
    if args.json:
        print_json(result_json(name, chain, result))
    else:
        sys.stdout.writelines(f"{tag}\n" for tag in result.selected)
        candidates = len(result.selected) + sum(r.stage == "latest" for r in result.rejected)
        if chain.latest is not None and 0 < len(result.not_versions) < candidates:
            more = f" (and {len(result.not_versions) - 1} more)" if len(result.not_versions) > 1 else ""
            sys.stderr.write(f"ferry: note: --latest ordered lexically: {result.not_versions[0]!r}{more} is not "
                             "a SemVer version; narrow the tags with --semver or --include to order by version\n")
    return 0


def result_json(repository: str, chain: TagFilter, result: FilterResult) -> dict[str, Any]:
    return {"repository": repository, "filter": chain.to_json(), "order": result.order,
            "selected": list(result.selected), "rejected": [r.to_json() for r in result.rejected],
            "notVersions": list(result.not_versions)}
