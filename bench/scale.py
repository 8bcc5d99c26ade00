"""Benchmark: do Durable runs stay linear in the number of artifacts? (issue 11)

    .venv/bin/python -m bench.scale --artifacts 1000 3000 [--json PATH] [--no-cli]

For each N: N small distinct artifacts (N/20 repositories of 20 tags; each image a unique config,
one or two unique ~6 KB layers and its repository's shared base layer) pushed straight through the
registry HTTP API into a fresh local registry, then, against one Azurite:

- ``ferry run`` export (the ``pipeline_run`` orchestration on the local runner, the real replay
  engine, claims in a directory) to a blob, and ``ferry run`` import of that blob into a fresh
  registry;
- ``ferry export`` / ``ferry import`` (the CLI, one process, no orchestration) of the same set.

Each ``ferry run`` goes through ``python -m bench.scale --child``, which runs the ``ferry run``
command with a runner that records, for every orchestration instance, its history size and its
custom statuses; the bench then reports the largest history, and the progress a reader sees
(the run's status combined with its children's, as the API and ``ferry run`` do): how often it
moved and the longest time it stood still while batches ran.

Printed: wall time and peak RSS (process tree) of each run, the largest history, progress, the
linearity ratio ``t(N2) / (N2/N1 * t(N1))`` for each kind of run (target <= 1.5) and each run's
time over the CLI's (target <= 2). Everything lives in a temp dir, removed at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    OCI_CONFIG,
    OCI_MANIFEST,
    ROOT,
    Blob,
    Manifest,
    Registries,
    compact,
    fast_layer,
    http_client,
    log,
    put_manifest,
    run_sampled,
    upload_blob,
)

FERRY = ROOT / ".venv" / "bin" / "ferry"
TAGS_PER_REPO = 20
TARGETS = {"linearity": 1.5, "over_cli": 2.0, "history_mb": 1.0}
MB = 1_000_000


# --- content ---------------------------------------------------------------------------------
def small_image(repo: str, n: int, base: Blob, rng: random.Random) -> Manifest:
    """One distinct image: a unique config, one or two unique small layers, the repository's base."""
    layers = [base] + [fast_layer(rng.randint(2_000, 9_000), f"f{n}-{k}.bin") for k in range(1 + n % 2)]
    config = Blob(OCI_CONFIG, compact({"architecture": "amd64", "os": "linux",
                                       "config": {"Labels": {"bench.scale": f"{repo}:{n}"}},
                                       "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]}}))
    raw = compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                   "layers": [b.descriptor() for b in layers]})
    return Manifest(OCI_MANIFEST, raw, blobs=[config, *layers])


def push_small_set(url: str, count: int, workers: int = 16) -> list[tuple[str, str, str]]:
    """Push ``count`` distinct images; returns (repo, tag, digest) of each."""
    repos = [f"scale/r{r:03d}" for r in range(max(1, -(-count // TAGS_PER_REPO)))]
    bases = {repo: fast_layer(12_000, "base.bin") for repo in repos}
    rng = random.Random(11)
    jobs = [(repos[i // TAGS_PER_REPO], f"t{i % TAGS_PER_REPO:02d}", i) for i in range(count)]
    images = {(repo, tag): small_image(repo, i, bases[repo], rng) for repo, tag, i in jobs}
    with http_client(url, workers) as client, ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda repo: upload_blob(client, repo, bases[repo]), repos))

        def push(job: tuple[str, str, int]) -> None:
            repo, tag, _ = job
            image = images[(repo, tag)]
            for blob in image.blobs[:1] + image.blobs[2:]:  # the base is there already
                upload_blob(client, repo, blob)
            put_manifest(client, repo, image, tag)

        list(pool.map(push, jobs))
    return [(repo, tag, images[(repo, tag)].digest) for repo, tag, _ in jobs]


# --- the child: `ferry run` with a recording runner --------------------------------------------
def child(argv: list[str]) -> int:
    """``--child STATS.json <ferry run args>``: run ``ferry run`` and write what the runner saw."""
    stats_path, args = Path(argv[0]), argv[1:]
    import cli
    import runner

    seen: list[tuple[float, str, Any]] = []
    lock = threading.Lock()
    started = time.monotonic()
    base = runner.LocalOrchestrationRunner

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self, *apps: Any, on_status: Any = None, **kw: Any) -> None:
            def record(instance: str, status: Any) -> None:
                with lock:
                    seen.append((time.monotonic() - started, instance, status))
                if on_status is not None:
                    on_status(instance, status)

            super().__init__(*apps, on_status=record, **kw)

        def close(self) -> None:
            histories = {r.instance_id: (r.name, len(json.dumps(r.history))) for r in self.instances()}
            stats_path.write_text(json.dumps({"histories": histories, "statuses": seen}))
            super().close()

    runner.LocalOrchestrationRunner = Recording  # type: ignore[misc]
    return cli.main(["run", *args])


def progress_figures(statuses: list[list[Any]]) -> dict[str, Any]:
    """Replay the statuses as a reader combines them: how often the run's percentage moved while
    copying, and the longest it stood still between planning and finishing."""
    from ferry.jobs.progress import child_ids, combine

    latest: dict[str, Any] = {}
    root = statuses[0][1] if statuses else ""
    moves: list[tuple[float, int]] = []
    for at, instance, status in statuses:
        latest[instance] = status
        parent = latest.get(root)
        shown = combine(parent, [latest.get(c) for c in child_ids(parent)])
        copying = isinstance(shown, dict) and shown.get("step") == "copying"
        if copying and (not moves or moves[-1][1] != shown.get("percentage")):
            moves.append((at, int(shown.get("percentage", 0))))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(moves)]
    return {"moves": len(moves), "percentages": [p for _, p in moves][:40], "max_stall_s": max(gaps, default=None)}


# --- runs ------------------------------------------------------------------------------------
def ferry_run(work: Path, kind: str, name: str, pipelines: Path, request: dict[str, Any],
              env: dict[str, str]) -> dict[str, Any]:
    run_file = work / f"{name}.json"
    run_file.write_text(json.dumps({"name": name, "properties": {"request": request}}))
    stats = work / f"{name}.stats.json"
    result = run_sampled([sys.executable, "-m", "bench.scale", "--child", stats, run_file, "--pipelines", pipelines,
                          "--json"], env=env, cwd=ROOT)
    response = json.loads(result.stdout or "{}").get("properties", {}).get("response", {})
    if result.returncode != 0 or response.get("status") != "Succeeded":
        raise RuntimeError(f"ferry run {kind} failed ({result.returncode}): {response.get('pipelineRunErrorMessage')}"
                           f"\n{result.stderr[-3000:]}")
    seen = json.loads(stats.read_text())
    biggest = max(seen["histories"].items(), key=lambda kv: kv[1][1])
    return {"seconds": result.seconds, "rss_mb": result.peak_rss / MB, "history_mb": biggest[1][1] / MB,
            "history_of": biggest[1][0], "instances": len(seen["histories"]),
            "pool_warnings": result.stderr.count("Connection pool is full"), **progress_figures(seen["statuses"])}


def ferry_cli(argv: list[Any], env: dict[str, str]) -> dict[str, Any]:
    result = run_sampled([FERRY, *argv], env=env)
    if result.returncode != 0:
        raise RuntimeError(f"ferry {argv[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return {"seconds": result.seconds, "rss_mb": result.peak_rss / MB,
            "pool_warnings": result.stderr.count("Connection pool is full")}


def verify(url: str, expected: list[tuple[str, str, str]], prefix: str = "", sample: int = 25) -> None:
    with http_client(url, 4) as client:
        for repo, tag, digest in random.Random(5).sample(expected, min(sample, len(expected))):
            got = client.head(f"/v2/{prefix}{repo}/manifests/{tag}",
                              headers={"Accept": OCI_MANIFEST}).headers.get("Docker-Content-Digest")
            if got != digest:
                raise RuntimeError(f"{prefix}{repo}:{tag} is {got} in the target, not {digest}")


def bench_one(count: int, regs: Registries, azurite: Any, work: Path, with_cli: bool) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient

    work = work / f"n{count}"
    work.mkdir()
    container = f"scale{count}"
    cs = azurite.connection_string("acct1")
    BlobServiceClient.from_connection_string(cs).create_container(container)
    container_url = f"{azurite.blob_endpoint('acct1')}/{container}"
    src = regs.start(f"src{count}")
    log(f"n={count}: pushing {count} artifacts")
    started = time.perf_counter()
    expected = push_small_set(src.url, count)
    log(f"n={count}: pushed in {time.perf_counter() - started:.1f} s")
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": cs, "FERRY_CLAIMS_DIR": str(work / "claims"),
           "FERRY_ALLOWED_HOSTS": "*", "FERRY_CACHE_DIR": str(work / "cache")}
    env.pop("AzureWebJobsStorage", None)
    pipelines = work / "pipelines"
    pipelines.mkdir()
    access = {"type": "AzureStorageBlobContainer", "uri": container_url, "storageAccessMode": "ConnectionString"}
    dst = regs.start(f"dst{count}")
    kinds = "Microsoft.ContainerRegistry/registries/"
    (pipelines / "exportpipe.json").write_text(json.dumps({"type": f"{kinds}exportPipelines", "properties": {
        "source": {"registryUri": src.host}, "target": access, "options": ["OverwriteBlobs"]}}))
    (pipelines / "importpipe.json").write_text(json.dumps({"type": f"{kinds}importPipelines", "properties": {
        "source": access, "target": {"registryUri": dst.host}, "options": ["OverwriteTags"]}}))
    refs = [f"{repo}:{tag}" for repo, tag, _ in expected]
    figures: dict[str, Any] = {"artifacts": count}
    log(f"n={count}: ferry run export")
    figures["run_export"] = ferry_run(work, "export", f"export{count}", pipelines, {
        "pipelineResourceId": "exportpipe", "artifacts": refs,
        "target": {"type": "AzureStorageBlob", "name": "run.tar"}}, env)
    log(f"n={count}: ferry run import")
    figures["run_import"] = ferry_run(work, "import", f"import{count}", pipelines, {
        "pipelineResourceId": "importpipe", "source": {"type": "AzureStorageBlob", "name": "run.tar"}}, env)
    verify(dst.url, expected)
    if with_cli:
        dst2 = regs.start(f"cli{count}")
        log(f"n={count}: ferry export / import")
        figures["cli_export"] = ferry_cli(["export", *[f"{src.host}/{r}" for r in refs], "--to",
                                          f"{container_url}/cli.tar", "--overwrite"], env)
        figures["cli_import"] = ferry_cli(["import", f"{container_url}/cli.tar", "--to", dst2.host], env)
        verify(dst2.url, expected)
        regs.drop(dst2)
    for server in (src, dst):
        regs.drop(server)
    return figures


# --- report ----------------------------------------------------------------------------------
def ratios(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first = results[0]
    for later in results[1:]:
        scale = later["artifacts"] / first["artifacts"]
        for kind in ("run_export", "run_import", "cli_export", "cli_import"):
            if kind in first and kind in later:
                out[f"{kind} {later['artifacts']}/{first['artifacts']}"] = \
                    later[kind]["seconds"] / (scale * first[kind]["seconds"])
    for fig in results:
        for kind in ("export", "import"):
            if f"cli_{kind}" in fig:
                out[f"run/cli {kind} at {fig['artifacts']}"] = \
                    fig[f"run_{kind}"]["seconds"] / fig[f"cli_{kind}"]["seconds"]
    return out


def render(results: list[dict[str, Any]], found: dict[str, Any]) -> str:
    lines = [f"{'run':<12}{'N':>7}{'time s':>10}{'RSS MB':>9}{'history MB':>12}{'moves':>7}{'stall s':>9}{'pool!':>7}"]
    for fig in results:
        for kind in ("run_export", "run_import", "cli_export", "cli_import"):
            if kind not in fig:
                continue
            f = fig[kind]
            stall = f.get("max_stall_s")
            lines.append(f"{kind:<12}{fig['artifacts']:>7}{f['seconds']:>10.1f}{f['rss_mb']:>9.0f}"
                         f"{f.get('history_mb', 0):>12.3f}{f.get('moves', ''):>7}"
                         f"{(f'{stall:.1f}' if stall is not None else '-'):>9}{f['pool_warnings']:>7}")
    for key, value in found.items():
        limit = TARGETS["over_cli"] if key.startswith("run/cli") else TARGETS["linearity"]
        mark = "" if value <= limit else "  MISSED"
        lines.append(f"{key:<34}{value:6.2f}  (target <= {limit}){mark}")
    worst = max((f[k].get("history_mb", 0) for f in results for k in ("run_export", "run_import") if k in f), default=0)
    lines.append(f"largest orchestration history {worst:.3f} MB (target <= {TARGETS['history_mb']})"
                 + ("" if worst <= TARGETS["history_mb"] else "  MISSED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI export/import")
    args = parser.parse_args(argv)
    from tests.harness.azurite import find_azurite, start_azurite

    binary = find_azurite()
    if binary is None:
        sys.exit("azurite is not installed (make bootstrap)")
    with tempfile.TemporaryDirectory(prefix="ferry-scale-") as tmp:
        work = Path(tmp)
        azurite = start_azurite(work / "azurite", binary, accounts=("acct1",))
        try:
            with Registries(work / "registries") as regs:
                results = [bench_one(n, regs, azurite, work, not args.no_cli) for n in args.artifacts]
        finally:
            azurite.stop()
    found = ratios(results)
    print(render(results, found))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": found}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
