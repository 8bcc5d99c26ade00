"""The ``ferry`` command line, a face beside ``api/`` (it imports ``function_app`` only for ``ferry run``).

Exit codes: 0 success, 1 some artifacts failed, 2 bad usage,
3 registry error, 4 authentication, 5 not found, 6 integrity, 7 conflict."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ferry import __version__
from ferry.errors import FerryError
from ferry.redact import RedactingFilter, redact

#: The module that registers each command. A run imports only the module of the command it names,
#: so ``ferry copy`` does not pay for the sync, Rego and signature code at start-up.
COMMAND_MODULES: dict[str, str] = {
    "copy": "copy_command", "export": "archive_commands", "import": "archive_commands",
    "inspect": "archive_commands", "copy-blob": "storage_commands", "run": "run_command",
    "tags": "tags_command", "sync": "sync_command",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` alone when it is a known command, otherwise for every command."""
    parser = argparse.ArgumentParser(prog="ferry", description="Move container images and OCI artifacts.")
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for HTTP)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else list(COMMAND_MODULES.values())
    for module_name in dict.fromkeys(wanted):
        importlib.import_module(f"cli.{module_name}").add_parser(subparsers)
    return parser


def named_command(argv: list[str]) -> str | None:
    """The first word that is not an option: the command, since the top-level options take no value."""
    return next((word for word in argv if not word.startswith("-")), None)


def configure_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if verbosity == 0 else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.INFO if verbosity > 1 else logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(named_command(words)).parse_args(words)
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
