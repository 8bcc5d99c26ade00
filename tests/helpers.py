"""Small helpers shared by Ferry's tests: run the CLI in-process and read registries independently."""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass

from cli import main as ferry_main


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


def pipeline_run_input(run_name: str, kind: str, pipeline: dict, request: dict) -> dict:
    """The ``pipeline_run`` orchestration input the API would start for ``request`` on ``pipeline``
    (an ACR body with its ``name``), built with the app settings of this process."""
    from ferry.settings import Settings
    from ferry.transfer.build import pipeline_run_job
    from ferry.transfer.models import parse_export_pipeline, parse_import_pipeline, parse_pipeline_run

    settings = Settings.from_env()
    parse = parse_export_pipeline if kind == "export" else parse_import_pipeline
    model = parse(pipeline["name"], pipeline, default_registry=settings.registry)
    run = parse_pipeline_run(f"run-{run_name}"[-50:], {"properties": {"request": {
        "pipelineResourceId": pipeline["name"], **request}}})
    return {"runName": run_name, "kind": kind, "job": pipeline_run_job(model, run, settings).to_json()}


def image_import_input(body: dict, source_registry: str | None = None) -> dict:
    """The ``image_import`` orchestration input the API would start for an ImportImageParameters body."""
    from ferry.settings import Settings
    from ferry.transfer.build import image_import_job
    from ferry.transfer.import_image import parse_import_image

    params = parse_import_image(body)
    host = source_registry or params.registry_uri
    assert host is not None
    return {"job": image_import_job(params, host, None, Settings.from_env()).to_json()}
