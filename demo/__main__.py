"""``make demo``: the whole export → copy → import story on local services, through the app.

1. Start Azurite with two storage accounts (the source and target clouds) and two registries
   (the target requires a password).
2. Seed the source registry: a multi-arch image with a signature and an SBOM, an ORAS artifact,
   a Helm chart.
3. Create an ExportPipeline and an ImportPipeline through the app's HTTP functions, in ACR's shapes.
4. PUT a PipelineRun: the Durable orchestrations export to a blob in the source account, with
   progress read back through GET pipelineRuns.
5. Copy the blob to the target account (the blob_copy orchestration, server-side copy).
6. The blob trigger fires for the landed archive and starts the import run by itself.
7. Verify every digest in the target with skopeo and print a summary table.

The Functions host is not needed: the local runner feeds history to the real azure-functions-durable
replay engine, and the HTTP and blob functions are called with real request/stream objects.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def say(text: str) -> None:
    print(text, flush=True)


def step(number: int, text: str) -> None:
    say(f"\n\033[1m{number}. {text}\033[0m")


def skopeo_digest(host: str, reference: str, creds: tuple[str, str] | None) -> str:
    import hashlib

    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if creds:
        command += ["--creds", f"{creds[0]}:{creds[1]}"]
    raw = subprocess.run([*command, f"docker://{host}/{reference}"], check=True, capture_output=True,
                         timeout=60).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def main() -> int:
    import azure.functions as func
    from azure.storage.blob import BlobServiceClient

    from tests.harness import content
    from tests.harness.azurite import find_azurite, start_azurite
    from tests.harness.registry import start_registry

    binary = find_azurite()
    if binary is None:
        say("azurite is not installed: run `make demo` (it bootstraps), not python -m demo")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="ferry-demo-"))
    stack: list[Any] = []
    try:
        step(1, "Local services")
        azurite = start_azurite(workdir / "azurite", binary)
        stack.append(azurite)
        source = start_registry(workdir / "source")
        stack.append(source)
        target = start_registry(workdir / "target", auth="htpasswd")
        stack.append(target)
        assert target.username and target.password
        say(f"   Azurite: accounts acct1 (source cloud) and acct2 (target cloud) on 127.0.0.1:{azurite.blob_port}")
        say(f"   registries: source {source.host} (anonymous), target {target.host} (password)")
        container = "transfer"
        for account in ("acct1", "acct2"):
            BlobServiceClient.from_connection_string(azurite.connection_string(account)).create_container(container)
        # The app settings local.settings.json would hold.
        os.environ.update({
            "AzureWebJobsStorage": azurite.connection_string("acct1"),
            "FERRY_STORAGE_CONNECTION_STRINGS": json.dumps([azurite.connection_string("acct1"),
                                                            azurite.connection_string("acct2")]),
            "FERRY_IMPORT_STORAGE": azurite.connection_string("acct2"),
            "FERRY_IMPORT_BLOB_PATH": f"{container}/{{name}}",
            "FERRY_REGISTRY": target.host,
            # The egress allow-list: exactly the demo's registries and storage, nothing else.
            "FERRY_ALLOWED_HOSTS": ",".join([source.host, target.host,
                                             urlsplit(azurite.blob_endpoint("acct1")).netloc]),
            "FERRY_CACHE_DIR": str(workdir / "cache"),
        })
        os.environ.pop("AZURE_STORAGE_CONNECTION_STRING", None)

        step(2, "Seed the source registry")
        samples = content.sample_set(seed=42)
        repos = content.push_samples(source.url, samples, prefix="demo", tag="1.0")
        artifacts = [f"{repos[k]}:1.0" for k in ("multiarch", "artifact", "helm")]
        for name in artifacts:
            say(f"   {source.host}/{name}")
        say("   + a signature and an SBOM referring to the multi-arch index")

        import function_app
        from runner import LocalDurableClient, LocalOrchestrationRunner
        from runner.client import acall_client_function
        from tests.helpers import app_functions

        functions = app_functions()

        def call(name: str, method: str, path: str, body: Any, client: Any = None,
                 params: dict[str, str] | None = None) -> Any:
            req = func.HttpRequest(method=method, url=f"http://localhost:7071/api/{path}",
                                   body=b"" if body is None else json.dumps(body).encode(),
                                   route_params=params or {}, headers={"Content-Type": "application/json"})
            fn = functions[name]
            response = (asyncio.run(acall_client_function(fn, client=client, req=req)) if client is not None
                        else fn.get_user_function()(req))
            if response.status_code >= 400:
                raise SystemExit(f"{method} /api/{path} answered {response.status_code}: "
                                 f"{response.get_body().decode()}")
            return json.loads(response.get_body() or b"null")

        step(3, "Create the pipelines (ACR's JSON, through the HTTP functions)")
        call("export_pipeline_put", "PUT", "exportPipelines/demo-export", {"properties": {
            "source": {"registryUri": source.host},
            "target": {"type": "AzureStorageBlobContainer",
                       "uri": f"{azurite.blob_endpoint('acct1')}/{container}",
                       "storageAccessMode": "ConnectionString"},
            "options": ["OverwriteBlobs"]}}, params={"name": "demo-export"})
        say("   PUT /api/exportPipelines/demo-export      target: acct1/transfer")
        call("import_pipeline_put", "PUT", "importPipelines/demo-import", {"properties": {
            "source": {"type": "AzureStorageBlobContainer",
                       "uri": f"{azurite.blob_endpoint('acct2')}/{container}",
                       "storageAccessMode": "ConnectionString"},
            "target": {"registryUri": target.host, "repositoryPrefix": "mirror",
                       "credentials": {"username": target.username, "password": target.password}},
            "trigger": {"sourceTrigger": {"status": "Enabled"}},
            "options": ["OverwriteTags", "DeleteSourceBlobOnSuccess"]}}, params={"name": "demo-import"})
        say("   PUT /api/importPipelines/demo-import      source: acct2/transfer, trigger Enabled")

        with LocalOrchestrationRunner(function_app.app) as runner:
            client = LocalDurableClient(runner)

            def follow(run: str) -> dict[str, Any]:
                last = None
                while True:
                    view = call("pipeline_run_get", "GET", f"pipelineRuns/{run}", None, client, {"name": run})
                    response = view["properties"]["response"]
                    shown = (response["status"], response.get("progress", {}).get("percentage"))
                    if shown != last:
                        say(f"   GET /api/pipelineRuns/{run}: {shown[0]}, {shown[1] or 0}%")
                        last = shown
                    if response["status"] not in ("Running", "Unknown"):
                        return response
                    time.sleep(0.2)

            step(4, "Export: PUT a PipelineRun")
            call("pipeline_run_put", "PUT", "pipelineRuns/demo-export-run", {"properties": {
                "request": {"pipelineResourceId": "/subscriptions/00000000-0000-0000-0000-000000000000/"
                                                  "resourceGroups/demo/providers/Microsoft.ContainerRegistry/"
                                                  "registries/demo/exportPipelines/demo-export",
                            "artifacts": artifacts, "target": {"type": "AzureStorageBlob", "name": "demo.tar"}},
                "forceUpdateTag": "1"}}, client, {"name": "demo-export-run"})
            exported = follow("demo-export-run")
            if exported["status"] != "Succeeded":
                say(f"   export failed: {exported.get('pipelineRunErrorMessage')}")
                return 1
            blob = BlobServiceClient.from_connection_string(azurite.connection_string("acct1")) \
                .get_blob_client(container, "demo.tar").get_blob_properties()
            say(f"   acct1/transfer/demo.tar: {blob.size:,} bytes, catalog {exported['catalogDigest'][:19]}…")

            step(5, "Copy the blob to the target account (server-side copy, polled on durable timers)")
            copied = runner.run("blob_copy", {
                "source": f"{azurite.blob_endpoint('acct1')}/{container}/demo.tar",
                "target": f"{azurite.blob_endpoint('acct2')}/{container}/demo.tar",
                "source_storage": {"mode": "ConnectionString"}, "target_storage": {"mode": "ConnectionString"}})
            if not isinstance(copied.output, dict) or "error" in copied.output:
                say(f"   copy failed: {copied.output or copied.error}")
                return 1
            say(f"   {copied.output['mode']} copy: {copied.output['status']}, {copied.output['size']:,} bytes")

            step(6, "The blob trigger fires for the landed archive and starts the import")
            # As the worker calls it: a BlobClient of the landed blob (its bytes are never loaded).
            landed = BlobServiceClient.from_connection_string(azurite.connection_string("acct2")) \
                .get_blob_client(container, "demo.tar")
            asyncio.run(acall_client_function(functions["import_trigger"], client=client, archive=landed))
            [run_name] = [r["name"] for r in call("pipeline_run_list", "GET", "pipelineRuns", None, client)["value"]
                          if r["name"].startswith("demo-import-")]
            imported = follow(run_name)
            if imported["status"] != "Succeeded":
                say(f"   import failed: {imported.get('pipelineRunErrorMessage')}")
                return 1
            say(f"   acct2/transfer/demo.tar deleted after verification: {not landed.exists()}")

        step(7, "Verify in the target registry with skopeo")
        say(f"\n   {'artifact':<28} {'source digest':<22} {'target digest':<22} match")
        all_ok = True
        for name in artifacts:
            expected = skopeo_digest(source.host, name, None)
            got = skopeo_digest(target.host, f"mirror/{name}", target.credentials)
            all_ok &= expected == got
            say(f"   {name:<28} {expected[:19]:<22} {got[:19]:<22} {'yes' if expected == got else 'NO'}")
        signature = samples["signature"].digest
        sig_ok = skopeo_digest(target.host, f"mirror/{repos['multiarch']}@{signature}", target.credentials) \
            == signature
        say(f"   {'signature (referrer)':<28} {signature[:19]:<22} {'present' if sig_ok else 'MISSING':<22}")
        all_ok &= sig_ok
        say("\nexport → copy → import complete: every digest identical" if all_ok else "\nDEMO FAILED")
        return 0 if all_ok else 1
    finally:
        for service in reversed(stack):
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
