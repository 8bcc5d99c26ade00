"""The ``ferry`` command line, a face beside ``api/`` (it imports ``function_app`` only for ``ferry run``).

Exit codes: 0 success, 1 some artifacts failed, 2 bad usage,
3 registry error, 4 authentication, 5 not found, 6 integrity, 7 conflict."""

from __future__ import annotations

import argparse
import logging
import sys

from cli import archive_commands, copy_command, run_command, storage_commands, sync_command, tags_command
from ferry import __version__
from ferry.errors import FerryError
from ferry.redact import RedactingFilter, redact


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description="Move container images and OCI artifacts.")
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for HTTP)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    copy_command.add_parser(subparsers)
    archive_commands.add_parsers(subparsers)
    storage_commands.add_parser(subparsers)
    run_command.add_parser(subparsers)
    tags_command.add_parser(subparsers)
    sync_command.add_parser(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if verbosity == 0 else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.INFO if verbosity > 1 else logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.handler(args))
    except FerryError as exc:
        sys.stderr.write(f"ferry: error: {redact(str(exc))}\n")
        return exc.exit_code
    except OSError as exc:  # a file or directory the command could not use: say which, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"ferry: error:{where}: {redact(exc.strerror or str(exc))}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ferry: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
