"""Benchmark: Ferry's transfer archive (export → copy-blob → import) against skopeo and the raw limits.

    .venv/bin/python -m bench.transfer [--scale 0.1] [--repeat 3] [--json PATH] [--no-skopeo]

Builds the reference set of ``bench/common.py`` (~30 images, ~450 MB unique at scale 1, base
layers shared across repositories) in a fresh local registry, starts one Azurite with two
accounts (acct1 = source storage, acct2 = target storage), and measures in interleaved rounds:

(a) Ferry: ``ferry export SRC/repo:* ... --to acct1 blob``, ``ferry copy-blob acct1 → acct2``
    (server-side copy; and, in a second pipeline, ``--relay``), ``ferry import acct2 blob --to DST``
    into a fresh registry. Each stage's wall time, CPU (ferry / Azurite / registries) and the
    total; every tag in the target is verified against the source digest.
(b) The skopeo pipeline a user would script, sequential per image: ``skopeo copy --all`` to an
    oci-archive file, ``upload_blob`` to acct1 (max_concurrency 8), ``start_copy_from_url`` to
    acct2 with a read SAS (polled until done), ``download_blob`` to a file (max_concurrency 8),
    ``skopeo copy --all`` from the file into a fresh registry.
(c) ``skopeo copy --all`` registry → registry per image, into a fresh registry.
Raw limits: parallel registry GET of every unique blob; Azurite parallel PUT (8 MiB blocks,
8 threads, one blob of the unique-bytes size); Azurite server copy of that blob to acct2;
Azurite parallel GET of it (8 MiB ranges, 8 threads, bytes discarded); registry parallel PUT.

Then, once, Ferry's peak RSS (sampled every 20 ms, children included) over export, copy-blob
--relay and import of one image with a 1 GiB layer (times --scale).

Prints every figure and the targets (MISSED next to a missed one); exits 0 unless the bench
itself breaks. Everything lives in a temp dir that is removed at the end; each ferry run gets a
fresh empty blob location cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobBlock, BlobClient, BlobSasPermissions, BlobServiceClient, generate_blob_sas

from bench.common import (
    MB,
    ROOT,
    CpuMeter,
    MiB,
    ReferenceSet,
    Registries,
    RunResult,
    build_reference_set,
    cpu_ratio,
    fast_layer,
    fresh_cache_env,
    fresh_registry,
    hash_cpu,
    http_client,
    log,
    median_of,
    oci_image,
    push_image,
    push_set,
    raw_get,
    raw_put,
    row,
    run_quiet,
    run_sampled,
    settle,
    startup_cpu,
    target_line,
    timed,
    verify_tags,
)
from tests.harness.azurite import AzuriteServer, find_azurite, start_azurite

FERRY = ROOT / ".venv" / "bin" / "ferry"
SRC_ACCOUNT, DST_ACCOUNT = "acct1", "acct2"
SRC_CONTAINER, DST_CONTAINER = "exports", "imports"
BLOCK = 8 * MiB
WORKERS = 8
TARGETS = {"a_over_b": 0.25, "a_relay_over_c": 2.0, "stage_over_raw": 1.5, "archive_over_unique": 1.01,
           "peak_rss_mb": 100.0, "cpu_over_hash": 3.0}


class Storage:
    """The Azurite instance and clients for its two accounts."""

    def __init__(self, server: AzuriteServer) -> None:
        self.server = server
        self.cs = {a: server.connection_string(a) for a in (SRC_ACCOUNT, DST_ACCOUNT)}
        self.services = {a: BlobServiceClient.from_connection_string(cs) for a, cs in self.cs.items()}
        self.services[SRC_ACCOUNT].create_container(SRC_CONTAINER)
        self.services[DST_ACCOUNT].create_container(DST_CONTAINER)

    def url(self, account: str, name: str) -> str:
        container = SRC_CONTAINER if account == SRC_ACCOUNT else DST_CONTAINER
        return f"{self.server.blob_endpoint(account)}/{container}/{name}"

    def blob(self, account: str, name: str) -> BlobClient:
        container = SRC_CONTAINER if account == SRC_ACCOUNT else DST_CONTAINER
        return self.services[account].get_blob_client(container, name)

    def read_sas_url(self, name: str) -> str:
        """A read-SAS URL of blob `name` in the source account, valid for an hour."""
        sas = generate_blob_sas(SRC_ACCOUNT, SRC_CONTAINER, name, account_key=self.server.accounts[SRC_ACCOUNT],
                                permission=BlobSasPermissions(read=True),
                                expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        return f"{self.url(SRC_ACCOUNT, name)}?{sas}"

    def server_copy(self, name: str, dst_name: str) -> None:
        """Server-side copy of source blob `name` to target blob `dst_name`, polled until done."""
        target = self.blob(DST_ACCOUNT, dst_name)
        target.start_copy_from_url(self.read_sas_url(name))
        while True:
            copy = target.get_blob_properties().copy
            if copy.status == "success":
                return
            if copy.status != "pending":
                raise RuntimeError(f"server copy of {name} ended {copy.status}: {copy.status_description}")
            time.sleep(0.02)

    def delete(self, account: str, name: str) -> None:
        self.blob(account, name).delete_blob()


def cpu_meter(storage: Storage, regs: Registries) -> CpuMeter:
    azurite_pid = storage.server.process.pid
    return CpuMeter({"azurite": lambda: [azurite_pid] if azurite_pid else [], "registries": regs.pids})


# --- (a) Ferry ------------------------------------------------------------------------------
def ferry_stage(argv: list[Any], meter: CpuMeter, env: dict[str, str]) -> tuple[RunResult, dict[str, float]]:
    settle()
    meter.start()
    # RSS sampled every 100 ms here (the 20 ms default costs a measurable share of 2 cores);
    # the peak-RSS scenario keeps 20 ms.
    res = run_sampled([FERRY, *argv, "--json"], env=env, cwd=ROOT, interval=0.1)
    cpu = meter.stop()
    res.check()
    return res, cpu


def bench_ferry(regs: Registries, storage: Storage, src: str, refset: ReferenceSet, relay: bool,
                tag: str) -> dict[str, Any]:
    meter = cpu_meter(storage, regs)
    name = f"ferry-{tag}.tar"
    cs = [a for acct in (SRC_ACCOUNT, DST_ACCOUNT) for a in ("--connection-string", storage.cs[acct])]
    stages: dict[str, dict[str, Any]] = {}
    reports: dict[str, Any] = {}

    def stage(key: str, argv: list[Any]) -> None:
        res, cpu = ferry_stage(argv, meter, fresh_cache_env(regs.root))
        stages[key] = {"seconds": res.seconds, "peak_rss_mb": res.peak_rss / MB,
                       "cpu_ferry": cpu["subprocesses"], "cpu_azurite": cpu["azurite"],
                       "cpu_registries": cpu["registries"], "cpu_bench": cpu["bench"],
                       "cpu_machine": cpu["machine_busy"], "cpu_steal": cpu["machine_steal"]}
        reports[key] = json.loads(res.stdout)

    src_url, dst_url = storage.url(SRC_ACCOUNT, name), storage.url(DST_ACCOUNT, name)
    stage("export", ["export", *[f"{src}/{repo}:*" for repo in refset.repos], "--to", src_url, *cs[:2]])
    archive_bytes = storage.blob(SRC_ACCOUNT, name).get_blob_properties().size
    stage("copy_blob", ["copy-blob", src_url, dst_url, *(["--relay"] if relay else []), *cs])
    with fresh_registry(regs, f"dst-ferry-{tag}") as dst:
        stage("import", ["import", dst_url, "--to", dst.host, *cs[2:]])
        problems = verify_tags(dst.url, refset)
    storage.delete(SRC_ACCOUNT, name)
    storage.delete(DST_ACCOUNT, name)
    return {"seconds": sum(s["seconds"] for s in stages.values()), **stages, "archive_bytes": archive_bytes,
            "reports": reports, "problems": problems}


# --- (b) skopeo pipeline, (c) direct skopeo -------------------------------------------------
def skopeo_pipeline_image(storage: Storage, skopeo: str, src: str, dst: str, ref: str, work: Path,
                          parts: dict[str, float]) -> str:
    """One image through the scripted pipeline; adds each step's seconds to `parts`. The blob name."""
    name = ref.replace("/", "_").replace(":", "-") + ".tar"
    out_file, in_file = work / f"out-{name}", work / f"in-{name}"

    def upload() -> None:
        with out_file.open("rb") as f:
            storage.blob(SRC_ACCOUNT, name).upload_blob(f, overwrite=True, max_concurrency=WORKERS)

    def download() -> None:
        with in_file.open("wb") as f:
            storage.blob(DST_ACCOUNT, name).download_blob(max_concurrency=WORKERS).readinto(f)

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("skopeo_out", lambda: run_quiet([skopeo, "copy", "--all", "--src-tls-verify=false",
                                          f"docker://{src}/{ref}", f"oci-archive:{out_file}:{ref}"]).check()),
        ("upload", upload),
        ("server_copy", lambda: storage.server_copy(name, name)),
        ("download", download),
        ("skopeo_in", lambda: run_quiet([skopeo, "copy", "--all", "--dest-tls-verify=false",
                                         f"oci-archive:{in_file}:{ref}", f"docker://{dst}/{ref}"]).check()),
    ]
    for key, fn in steps:
        parts[key] += timed(fn)[0]
    out_file.unlink()
    in_file.unlink()
    return name


def bench_skopeo_pipeline(regs: Registries, storage: Storage, src: str, refset: ReferenceSet,
                          skopeo: str, tag: str) -> dict[str, Any]:
    work = regs.root / f"skopeo-{tag}"
    work.mkdir()
    parts = dict.fromkeys(("skopeo_out", "upload", "server_copy", "download", "skopeo_in"), 0.0)
    with fresh_registry(regs, f"dst-skopeo-pipe-{tag}") as dst:
        settle()
        start = time.perf_counter()
        names = [skopeo_pipeline_image(storage, skopeo, src, dst.host, f"{repo}:{ref_tag}", work, parts)
                 for repo, ref_tag, _ in refset.images]
        seconds = time.perf_counter() - start
        problems = verify_tags(dst.url, refset)
    for name in names:
        storage.delete(SRC_ACCOUNT, name)
        storage.delete(DST_ACCOUNT, name)
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, **{f"{k}_seconds": v for k, v in parts.items()}, "problems": problems}


def bench_skopeo_direct(regs: Registries, src: str, refset: ReferenceSet, skopeo: str) -> dict[str, Any]:
    with fresh_registry(regs, "dst-skopeo") as dst:
        settle()
        start = time.perf_counter()
        for repo, tag, _ in refset.images:
            run_quiet([skopeo, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                       f"docker://{src}/{repo}:{tag}", f"docker://{dst.host}/{repo}:{tag}"]).check()
        seconds = time.perf_counter() - start
        problems = verify_tags(dst.url, refset)
    return {"seconds": seconds, "problems": problems}


# --- raw limits -----------------------------------------------------------------------------
def azure_raw_put(client: BlobClient, refset: ReferenceSet) -> tuple[float, int]:
    """Stage every unique blob's bytes as 8 MiB blocks (8 threads) and commit: one blob of the
    unique-bytes size. (seconds, bytes)"""
    pieces = [(b, off) for b in refset.blobs().values() for off in range(0, b.size, BLOCK)]
    ids = [f"{i:032d}" for i in range(len(pieces))]

    def stage(i: int) -> None:
        blob, off = pieces[i]
        client.stage_block(ids[i], blob.data[off:off + BLOCK])

    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(stage, range(len(pieces))))
    client.commit_block_list([BlobBlock(block_id=i) for i in ids])
    return time.perf_counter() - start, sum(b.size for b in refset.blobs().values())


def azure_raw_get(client: BlobClient, size: int) -> float:
    """Read the blob as 8 MiB ranges, 8 in flight, discarding the bytes."""
    def get(off: int) -> int:
        return len(client.download_blob(offset=off, length=min(BLOCK, size - off)).readall())

    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        got = sum(pool.map(get, range(0, size, BLOCK)))
    if got != size:
        raise RuntimeError(f"raw Azurite GET read {got} of {size} bytes")
    return time.perf_counter() - start


def bench_raw(regs: Registries, storage: Storage, src_url: str, refset: ReferenceSet, tag: str) -> dict[str, Any]:
    meter = cpu_meter(storage, regs)
    out: dict[str, Any] = {}

    def measure(key: str, fn: Callable[[], float]) -> None:
        settle()
        meter.start()
        out[f"{key}_seconds"] = fn()
        cpu = meter.stop()
        out[f"{key}_cpu_azurite"] = cpu["azurite"]
        out[f"{key}_cpu_registries"] = cpu["registries"]
        out[f"{key}_cpu_bench"] = cpu["bench"]
        out[f"{key}_cpu_machine"] = cpu["machine_busy"]
        out[f"{key}_cpu_steal"] = cpu["machine_steal"]

    name = f"raw-{tag}.bin"
    measure("registry_get", lambda: raw_get(src_url, refset, WORKERS)[0])
    measure("azure_put", lambda: azure_raw_put(storage.blob(SRC_ACCOUNT, name), refset)[0])
    measure("azure_copy", lambda: timed(lambda: storage.server_copy(name, name))[0])
    size = storage.blob(DST_ACCOUNT, name).get_blob_properties().size
    measure("azure_get", lambda: azure_raw_get(storage.blob(DST_ACCOUNT, name), size))
    with fresh_registry(regs, f"dst-raw-put-{tag}") as dst:
        measure("registry_put", lambda: raw_put(dst.url, refset, WORKERS)[0])
    storage.delete(SRC_ACCOUNT, name)
    storage.delete(DST_ACCOUNT, name)
    out["bytes"] = size
    out["ferry_startup_seconds"] = run_quiet([FERRY, "copy-blob", "--help"]).check().seconds
    return out


# --- peak RSS -------------------------------------------------------------------------------
def bench_rss(regs: Registries, storage: Storage, scale: float) -> dict[str, Any]:
    size = max(MiB, int(1024 * MiB * scale))
    layer = fast_layer(size, "data/big.bin")
    image = oci_image([layer], label="bench/big:v1")
    hashing = hash_cpu([layer])
    with fresh_registry(regs, "src-rss") as src:
        push_image(src.url, "bench/big", "v1", image)
        del layer
        name = "rss.tar"
        src_url, dst_url = storage.url(SRC_ACCOUNT, name), storage.url(DST_ACCOUNT, name)
        cs = [a for acct in (SRC_ACCOUNT, DST_ACCOUNT) for a in ("--connection-string", storage.cs[acct])]
        runs: dict[str, RunResult] = {}
        settle()
        runs["export"] = run_sampled([FERRY, "export", f"{src.host}/bench/big:v1", "--to", src_url, *cs[:2], "--json"],
                                     env=fresh_cache_env(regs.root), cwd=ROOT).check()
        settle()
        runs["copy_blob_relay"] = run_sampled([FERRY, "copy-blob", src_url, dst_url, "--relay", *cs, "--json"],
                                              env=fresh_cache_env(regs.root), cwd=ROOT).check()
        with fresh_registry(regs, "dst-rss") as dst:
            settle()
            runs["import"] = run_sampled([FERRY, "import", dst_url, "--to", dst.host, *cs[2:], "--json"],
                                         env=fresh_cache_env(regs.root), cwd=ROOT).check()
            with http_client(dst.url, 1) as client:
                got = client.head("/v2/bench/big/manifests/v1",
                                  headers={"Accept": image.media_type}).headers.get("Docker-Content-Digest")
    storage.delete(SRC_ACCOUNT, name)
    storage.delete(DST_ACCOUNT, name)
    problems = [] if got == image.digest else [f"bench/big:v1 is {got}, expected {image.digest}"]
    return {"layer_bytes": size, **{f"{k}_seconds": r.seconds for k, r in runs.items()},
            **{f"{k}_peak_rss_mb": r.peak_rss / MB for k, r in runs.items()},
            **{f"{k}_cpu": r.cpu for k, r in runs.items()}, "hash_cpu": hashing,
            "peak_rss_mb": max(r.peak_rss for r in runs.values()) / MB, "problems": problems}


# --- report ---------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def compute_ratios(fig: dict[str, Any], unique: int) -> dict[str, float | None]:
    srv, rel, raw = fig["ferry_server"], fig["ferry_relay"], fig["raw"]
    b = fig.get("skopeo_pipeline", {}).get("seconds")
    c = fig.get("skopeo_direct", {}).get("seconds")
    return {
        "a_server_over_b": ratio(srv["seconds"], b),
        "a_relay_over_b": ratio(rel["seconds"], b),
        "a_relay_over_c": ratio(rel["seconds"], c),
        "a_server_over_c": ratio(srv["seconds"], c),
        "export_over_raw": ratio(statistics.median([srv["export"]["seconds"], rel["export"]["seconds"]]),
                                 max(raw["registry_get_seconds"], raw["azure_put_seconds"])),
        "copy_server_over_raw": ratio(srv["copy_blob"]["seconds"], raw["azure_copy_seconds"]),
        "copy_relay_over_raw": ratio(rel["copy_blob"]["seconds"],
                                     max(raw["azure_get_seconds"], raw["azure_put_seconds"])),
        "import_over_raw": ratio(statistics.median([srv["import"]["seconds"], rel["import"]["seconds"]]),
                                 max(raw["azure_get_seconds"], raw["registry_put_seconds"])),
        "archive_over_unique": srv["archive_bytes"] / unique,
        "peak_rss_mb": fig["rss"]["peak_rss_mb"],
        **{f"{key}_cpu_over_hash": cpu_ratio(statistics.median([srv[key]["cpu_ferry"], rel[key]["cpu_ferry"]]),
                                             fig["ferry_startup_cpu"], fig["set"]["hash_cpu"])
           for key in ("export", "import")},
        "copy_relay_cpu_over_hash": cpu_ratio(rel["copy_blob"]["cpu_ferry"], fig["ferry_startup_cpu"],
                                              fig["set"]["hash_cpu"]),
        **{f"big_{key}_cpu_over_hash": cpu_ratio(fig["rss"][f"{key}_cpu"], fig["ferry_startup_cpu"],
                                                 fig["rss"]["hash_cpu"]) for key in ("export", "import")},
    }


def stage_rows(label: str, fig: dict[str, Any], unique: int) -> list[str]:
    lines = [row(f"(a) Ferry, {label}: total", fig, "seconds", unique)]
    for key in ("export", "copy_blob", "import"):
        st = fig[key]
        lines.append(row(f"    {key.replace('_', '-')}", st, "seconds", unique)
                     + f"   cpu ferry {st['cpu_ferry']:.1f}s azurite {st['cpu_azurite']:.1f}s "
                       f"registries {st['cpu_registries']:.1f}s bench {st['cpu_bench']:.1f}s "
                       f"(all {st['cpu_machine']:.1f}s, steal {st['cpu_steal']:.1f}s), "
                       f"rss {st['peak_rss_mb']:.0f} MB")
    return lines


def render(fig: dict[str, Any], ratios: dict[str, float | None], repeat: int) -> str:
    s, unique = fig["set"], fig["set"]["unique_bytes"]
    raw, rss = fig["raw"], fig["rss"]
    pipe = fig.get("skopeo_pipeline")
    w = 50
    lines = [
        "",
        f"Reference set: {s['images']} images in {s['repositories']} repositories, {s['manifests']} manifests, "
        f"{s['blobs']} blobs (scale {fig['scale']:g})",
        f"  unique bytes  {unique / MB:9.1f} MB",
        f"  logical bytes {s['logical_bytes'] / MB:9.1f} MB  (sum over images)",
        f"  archive bytes {fig['ferry_server']['archive_bytes'] / MB:9.1f} MB  (exported blob)",
        "",
        f"{'measurement (median of ' + str(repeat) + ')':{w}s} {'wall':>10s} {'rate (unique)':>14s}   runs",
        *stage_rows("server-side copy", fig["ferry_server"], unique),
        *stage_rows("relay copy", fig["ferry_relay"], unique),
        row("(b) skopeo pipeline, per image", pipe, "seconds", unique, w),
    ]
    if pipe:
        for key in ("skopeo_out", "upload", "server_copy", "download", "skopeo_in"):
            lines.append(row(f"    {key.replace('_', ' ')} (sum)", pipe, f"{key}_seconds", unique, w))
    lines += [
        row("(c) skopeo copy registry→registry, per image", fig.get("skopeo_direct"), "seconds", unique, w),
        *[row(label, raw, f"{key}_seconds", raw["bytes"], w)
          + f"   cpu bench {raw[key + '_cpu_bench']:.1f}s azurite {raw[key + '_cpu_azurite']:.1f}s "
            f"registries {raw[key + '_cpu_registries']:.1f}s "
            f"(all {raw[key + '_cpu_machine']:.1f}s, steal {raw[key + '_cpu_steal']:.1f}s)"
          for label, key in [("raw registry GET (parallel)", "registry_get"),
                             ("raw Azurite PUT (8 MiB blocks, 8 threads)", "azure_put"),
                             ("raw Azurite server copy acct1→acct2", "azure_copy"),
                             ("raw Azurite GET (8 MiB ranges, 8 threads)", "azure_get"),
                             ("raw registry PUT (parallel)", "registry_put")]],
        row("(info) ferry start-up (copy-blob --help)", raw, "ferry_startup_seconds", 0, w),
        "",
        f"Peak RSS, one image with a {rss['layer_bytes'] / MiB:.0f} MiB layer: export "
        f"{rss['export_peak_rss_mb']:.0f} MB ({rss['export_seconds']:.1f} s), copy-blob --relay "
        f"{rss['copy_blob_relay_peak_rss_mb']:.0f} MB ({rss['copy_blob_relay_seconds']:.1f} s), import "
        f"{rss['import_peak_rss_mb']:.0f} MB ({rss['import_seconds']:.1f} s)",
        f"CPU of the big layer: export {rss['export_cpu']:.2f} s, import {rss['import_cpu']:.2f} s; sha256 of it "
        f"{rss['hash_cpu']:.3f} s; of the set {s['hash_cpu']:.3f} s; ferry start-up {fig['ferry_startup_cpu']:.2f} s",
        "",
        "Targets:",
    ]
    t = TARGETS
    for label, key, limit, unit in [
        ("a (server copy) / b", "a_server_over_b", t["a_over_b"], ""),
        ("a (relay) / b", "a_relay_over_b", t["a_over_b"], ""),
        ("a (relay) / c", "a_relay_over_c", t["a_relay_over_c"], ""),
        ("export / max(raw GET, Azurite PUT)", "export_over_raw", t["stage_over_raw"], ""),
        ("copy-blob server / Azurite server copy", "copy_server_over_raw", t["stage_over_raw"], ""),
        ("copy-blob relay / max(Azurite GET, PUT)", "copy_relay_over_raw", t["stage_over_raw"], ""),
        ("import / max(Azurite GET, registry PUT)", "import_over_raw", t["stage_over_raw"], ""),
        ("archive bytes / unique bytes", "archive_over_unique", t["archive_over_unique"], ""),
        ("Ferry peak RSS (big layer)", "peak_rss_mb", t["peak_rss_mb"], " MB"),
        ("export CPU / sha256 (set, net of start-up)", "export_cpu_over_hash", t["cpu_over_hash"], ""),
        ("import CPU / sha256 (set, net of start-up)", "import_cpu_over_hash", t["cpu_over_hash"], ""),
        ("copy-blob relay CPU / sha256 (set)", "copy_relay_cpu_over_hash", t["cpu_over_hash"], ""),
        ("export CPU / sha256 (big layer)", "big_export_cpu_over_hash", t["cpu_over_hash"], ""),
        ("import CPU / sha256 (big layer)", "big_import_cpu_over_hash", t["cpu_over_hash"], ""),
    ]:
        lines.append(f"  {label:42s} {target_line(ratios[key], limit, unit)}")
    lines.append(f"  (info) a (server copy) / c               "
                 f"{ratios['a_server_over_c']:.2f}" if ratios["a_server_over_c"] else "  (info) a / c n/a")
    for name in ("ferry_server", "ferry_relay", "skopeo_pipeline", "skopeo_direct", "rss"):
        for problem in fig.get(name, {}).get("problems", [])[:5]:
            lines.append(f"  VERIFY {name}: {problem}")
    lines.append(f"\nbench wall time {fig['bench_seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale layer sizes (0.1 for a quick smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of each measurement; the median is reported (default 3)")
    parser.add_argument("--no-skopeo", action="store_true", help="skip (b) and (c)")
    args = parser.parse_args(argv)
    azurite_bin = find_azurite()
    if azurite_bin is None:
        raise SystemExit("azurite not found: run `bash scripts/bootstrap.sh`")
    skopeo = None if args.no_skopeo else shutil.which("skopeo")
    if skopeo is None and not args.no_skopeo:
        log("skopeo not installed: skipping (b) and (c)")
    bench_start = time.perf_counter()
    fig: dict[str, Any] = {"scale": args.scale, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp, Registries(Path(tmp)) as regs:
        azurite = start_azurite(Path(tmp) / "azurite", azurite_bin, (SRC_ACCOUNT, DST_ACCOUNT))
        try:
            storage = Storage(azurite)
            log("building the reference set")
            build_s, refset = timed(lambda: build_reference_set(args.scale))
            src = regs.start("source")
            push_s, _ = timed(lambda: push_set(src.url, refset, workers=8))
            if problems := verify_tags(src.url, refset):
                raise RuntimeError(f"reference set push incomplete: {problems[:3]}")
            unique = refset.unique_bytes
            fig["set"] = {"images": len(refset.images), "repositories": len(refset.repos),
                          "manifests": refset.manifest_count, "blobs": len(refset.blobs()),
                          "unique_bytes": unique, "logical_bytes": refset.logical_bytes,
                          "build_seconds": build_s, "push_seconds": push_s}
            log(f"set: {len(refset.images)} images, {unique / MB:.0f} MB unique, built {build_s:.1f}s, "
                f"pushed {push_s:.1f}s")
            fig["set"]["hash_cpu"] = hash_cpu(refset.blobs().values())
            fig["ferry_startup_cpu"] = startup_cpu(FERRY)
            rounds: dict[str, list[dict[str, Any]]] = {
                "ferry_server": [], "ferry_relay": [], "skopeo_pipeline": [], "skopeo_direct": [], "raw": []}
            for n in range(1, args.repeat + 1):
                # Interleaved rounds, so that drift (page cache, writeback, Azurite's store) hits all alike.
                r = f"round {n}/{args.repeat}"
                log(f"{r}: ferry, server-side copy")
                rounds["ferry_server"].append(bench_ferry(regs, storage, src.host, refset, False, f"server-{n}"))
                log(f"{r}: ferry, relay copy")
                rounds["ferry_relay"].append(bench_ferry(regs, storage, src.host, refset, True, f"relay-{n}"))
                if skopeo:
                    log(f"{r}: skopeo pipeline")
                    rounds["skopeo_pipeline"].append(
                        bench_skopeo_pipeline(regs, storage, src.host, refset, skopeo, str(n)))
                    log(f"{r}: skopeo direct")
                    rounds["skopeo_direct"].append(bench_skopeo_direct(regs, src.host, refset, skopeo))
                log(f"{r}: raw limits")
                rounds["raw"].append(bench_raw(regs, storage, src.url, refset, str(n)))
            for name, runs in rounds.items():
                if runs:
                    fig[name] = median_of(runs)
            regs.drop(src)
            log("peak RSS, one big layer")
            fig["rss"] = bench_rss(regs, storage, args.scale)
        finally:
            azurite.stop()
    fig["bench_seconds"] = time.perf_counter() - bench_start
    ratios = compute_ratios(fig, fig["set"]["unique_bytes"])
    fig["ratios"], fig["targets"] = ratios, TARGETS
    print(render(fig, ratios, args.repeat))
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
