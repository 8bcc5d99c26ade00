"""Small helpers shared by Ferry's tests: run the CLI in-process and read registries independently."""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass

from ferry.cli import main as ferry_main


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def run_ferry(capsys, *args: str) -> CliResult:
    """Run ``ferry ARGS`` in this process and capture its output."""
    capsys.readouterr()
    code = ferry_main(list(args))
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def skopeo_raw(host: str, repo: str, ref: str, creds: tuple[str, str] | None = None) -> bytes:
    """The manifest bytes skopeo reads for ``host/repo:ref`` (or ``@digest``)."""
    sep = "@" if ref.startswith("sha256:") else ":"
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repo}{sep}{ref}"]
    if creds:
        command[3:3] = ["--creds", f"{creds[0]}:{creds[1]}"]
    return subprocess.run(command, check=True, capture_output=True, timeout=60).stdout


@functools.cache
def app_functions() -> dict:
    """function_app's functions as the worker indexes them. ``get_functions()`` may be called only
    once per app (it records names for its duplicate check), so every test shares this one call."""
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
