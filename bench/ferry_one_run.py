"""Copy many ``repo:tag`` from one registry to another in ONE Ferry run (Python API).

Usage: ``python -m bench.ferry_one_run SRC_HOST DST_HOST REPO:TAG [REPO:TAG ...] [--parallel N]``

One `copy_artifacts` call, so blobs shared across repositories are moved once and mounted.
Prints the CopyReport counters as JSON; exits 1 if an artifact failed. Run as a subprocess by
``bench/copy.py`` so that its wall time and RSS include interpreter start-up, as the CLI's do.
"""

from __future__ import annotations

import argparse
import json
import sys

from ferry.cli.locations import make_client
from ferry.copy import CopyOptions, CopyRequest, copy_artifacts
from ferry.registry.credentials import Credentials
from ferry.transports.registry import RegistryDestination, RegistrySource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("refs", nargs="+", metavar="REPO:TAG")
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args(argv)
    requests = []
    for ref in args.refs:
        repo, _, tag = ref.rpartition(":")
        requests.append(CopyRequest(repo, tag, repo, (tag,)))
    with make_client(args.source, Credentials.anonymous(), [], args.parallel) as src, \
            make_client(args.destination, Credentials.anonymous(), [], args.parallel) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst), requests,
                                CopyOptions(parallelism=args.parallel))
    print(json.dumps({
        "ok": report.ok, "artifacts": len(report.artifacts), "failed": [a.error for a in report.failed],
        "blobs_total": report.blobs_total, "blobs_uploaded": report.blobs_uploaded,
        "blobs_mounted": report.blobs_mounted, "blobs_skipped": report.blobs_skipped,
        "bytes_total": report.bytes_total, "bytes_uploaded": report.bytes_uploaded, "seconds": report.seconds,
    }))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
