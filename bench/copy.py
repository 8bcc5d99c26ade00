"""Benchmark: Ferry registry→registry copy against skopeo and the raw registry limits.

    .venv/bin/python -m bench.copy [--scale 0.1] [--repeat 3] [--json PATH] [--parallel 8] [--raw-workers 8]

Builds a reference set (~30 images, ~450 MB unique at scale 1, base layers shared across
repositories, two repositories of multi-arch indexes) in a fresh local registry, then measures,
each into a FRESH empty target registry:

1. ``ferry copy SRC/repo DST/repo --all-tags --json`` per repository, sequentially ("CLI per repo"),
   and the whole set in one Ferry run through the Python API in a subprocess ("one run",
   ``ferry copy SRC... DST --all-tags``), so blobs shared across repositories move once.
2. ``skopeo copy --all`` per image (repo:tag), sequentially, as a user would script it.
3. Raw limits: parallel GET of every unique blob (bytes discarded) and parallel monolithic
   POST+PUT of the same blobs into a fresh registry.
4. Peak RSS of ``ferry copy`` of one image with a 1 GiB layer (times --scale; sampled every 20 ms,
   children included).
5. CPU per byte: Ferry's CPU time (user + system, net of its start-up, ``ferry copy --help``) over
   the CPU hashlib.sha256 takes for the same bytes, for the one run and for the big layer.
6. Requests per artifact: 20 small single-platform images (config + one 2 KB layer; 5 repositories
   of 4 tags) in one run (``--all-tags``), one of them by tag alone, and the one run into a target
   that takes the single-POST upload, each through counting proxies (``tests/harness/faultproxy.py``)
   in front of both registries: every request either side sees, divided by the artifacts copied,
   and the split by kind (in the JSON).

Measurements 1-3 run in --repeat interleaved rounds (median reported; dirty pages flushed before
each); peak RSS is the max over rounds. Every copy is verified (each tag in the target points at
the source digest). Prints a table and
the ratios against the targets (MISSED next to a missed one); always exits 0 unless the bench
itself breaks. Everything lives in a temp dir that is removed at the end; nothing is cached.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    ROOT,
    MiB,
    ReferenceSet,
    Registries,
    build_reference_set,
    cpu_ratio,
    fast_layer,
    fresh_cache_env,
    fresh_registry,
    hash_cpu,
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
from tests.harness.faultproxy import FaultProxy
from tests.harness.singlepost import SinglePostRegistry

PYTHON = ROOT / ".venv" / "bin" / "python"
FERRY = ROOT / ".venv" / "bin" / "ferry"
TARGETS = {"ferry_over_skopeo": 0.45, "ferry_over_raw_put": 1.5, "peak_rss_mb": 100.0, "cpu_over_hash": 3.0,
           "requests_per_artifact": 12.0}


def bench_ferry_cli(regs: Registries, src: str, refset: Any, parallel: int) -> dict[str, Any]:
    with fresh_registry(regs, "dst-ferry-cli") as dst:
        settle()
        start = time.perf_counter()
        uploaded = 0
        env = fresh_cache_env(regs.root)  # one cold cache shared by the runs, as one user's would be
        for repo in refset.repos:
            res = run_quiet([FERRY, "copy", f"{src}/{repo}", f"{dst.host}/{repo}", "--all-tags", "--json",
                             "--parallel", str(parallel)], env=env).check()
            uploaded += json.loads(res.stdout).get("bytes_uploaded", 0)
        seconds = time.perf_counter() - start
        problems = verify_tags(dst.url, refset)
    return {"seconds": seconds, "bytes_uploaded": uploaded, "problems": problems}


def bench_ferry_one_run(regs: Registries, src: str, refset: Any, parallel: int) -> dict[str, Any]:
    sources = [f"{src}/{repo}" for repo in refset.repos]
    with fresh_registry(regs, "dst-ferry-one") as dst:
        settle()
        res = run_sampled([FERRY, "copy", *sources, dst.host, "--all-tags", "--json", "--parallel", str(parallel)],
                          cwd=ROOT, env=fresh_cache_env(regs.root)).check()
        report = json.loads(res.stdout)
        problems = verify_tags(dst.url, refset)
    return {"seconds": res.seconds, "peak_rss_mb": res.peak_rss / MB, "cpu": res.cpu, "report": report,
            "problems": problems}


def small_artifacts(repos: int = 5, tags: int = 4) -> ReferenceSet:
    """Small single-platform images (a config and one 2 KB layer each), ``tags`` per repository."""
    images = [(f"bench/small{r}", f"v{t}", oci_image([fast_layer(2000, f"data/{r}-{t}.bin")], label=f"{r}:{t}"))
              for r in range(repos) for t in range(tags)]
    return ReferenceSet(images)


def bench_requests(regs: Registries) -> dict[str, Any]:
    """Requests per small single-platform artifact, counted by proxies in front of both registries:
    one run of every repository (``--all-tags``), one image by tag alone, and the one run again
    into a target that takes the single-POST upload (``tests/harness/singlepost.py`` in front of
    the registry; distribution 2.8 lacks it)."""
    refset = small_artifacts()
    counts: dict[str, Any] = {"artifacts": len(refset.images)}
    scenarios = [("one_run", refset.repos, False), ("by_tag", [":".join(refset.images[0][:2])], False),
                 ("one_run_single_post", refset.repos, True)]
    with fresh_registry(regs, "src-count") as src:
        push_set(src.url, refset, workers=8)
        for key, sources, single_post in scenarios:
            with fresh_registry(regs, f"dst-count-{key}") as dst:
                front = SinglePostRegistry(dst.host) if single_post else None
                src_proxy, dst_proxy = FaultProxy(src.host), FaultProxy(front.host if front else dst.host)
                try:
                    run_quiet([FERRY, "copy", *[f"{src_proxy.host}/{s}" for s in sources], dst_proxy.host, "--json",
                               *(["--all-tags"] if len(sources) > 1 else [])], env=fresh_cache_env(regs.root)).check()
                finally:
                    for server in (src_proxy, dst_proxy, *([front] if front else [])):
                        server.stop()
                seen = src_proxy.requests + dst_proxy.requests
                kinds = Counter(f"{k.split()[0]} {_kind(k.split()[1])}" for k in seen.elements())
                artifacts = len(refset.images) if len(sources) > 1 else 1
                counts[key] = {"requests": seen.total(), "per_artifact": seen.total() / artifacts,
                               "by_kind": dict(sorted(kinds.items()))}
    return counts


def _kind(path: str) -> str:
    for marker, kind in (("/manifests/sha256:", "manifest by digest"), ("/manifests/sha256-", "fallback tag"),
                         ("/manifests/", "manifest by tag"), ("/blobs/uploads/", "upload"), ("/blobs/", "blob"),
                         ("/referrers/", "referrers"), ("/tags/list", "tag list")):
        if marker in path:
            return kind
    return path


def bench_skopeo(regs: Registries, src: str, refset: Any) -> dict[str, Any]:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        return {"seconds": None, "problems": ["skopeo not installed"]}
    with fresh_registry(regs, "dst-skopeo") as dst:
        settle()
        start = time.perf_counter()
        for repo, tag, _ in refset.images:
            run_quiet([skopeo, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                       f"docker://{src}/{repo}:{tag}", f"docker://{dst.host}/{repo}:{tag}"]).check()
        seconds = time.perf_counter() - start
        problems = verify_tags(dst.url, refset)
    return {"seconds": seconds, "problems": problems}


def bench_raw(regs: Registries, src_url: str, refset: Any, workers: int) -> dict[str, Any]:
    settle()
    get_s, get_bytes = raw_get(src_url, refset, workers)
    with fresh_registry(regs, "dst-raw-put") as dst:
        settle()
        put_s, put_bytes = raw_put(dst.url, refset, workers)
    return {"get_seconds": get_s, "get_bytes": get_bytes, "put_seconds": put_s, "put_bytes": put_bytes}


def bench_rss(regs: Registries, src: Any, scale: float, parallel: int, repeat: int) -> dict[str, Any]:
    size = max(1024 * 1024, int(1024 * 1024 * 1024 * scale))
    layer = fast_layer(size, "data/big.bin")
    image = oci_image([layer], label="bench/big:v1")
    push_image(src.url, "bench/big", "v1", image)
    hashing = hash_cpu([layer])
    del layer
    runs = []
    for _ in range(repeat):
        with fresh_registry(regs, "dst-rss") as dst:
            settle()
            runs.append(run_sampled([FERRY, "copy", f"{src.host}/bench/big:v1", f"{dst.host}/bench/big:v1",
                                     "--json", "--parallel", str(parallel)],
                                    env=fresh_cache_env(regs.root)).check())
    return {"layer_bytes": size, "seconds": statistics.median(r.seconds for r in runs),
            "seconds_runs": [r.seconds for r in runs], "cpu": statistics.median(r.cpu for r in runs),
            "hash_cpu": hashing,
            "peak_rss_mb": max(r.peak_rss for r in runs) / MB, "peak_rss_mb_runs": [r.peak_rss / MB for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale layer sizes (0.1 for a quick smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--parallel", type=int, default=8, help="ferry --parallel (default 8, ferry's default)")
    parser.add_argument("--raw-workers", type=int, default=8, help="threads for the raw GET/PUT (default 8)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of each measurement; the median is reported (default 3)")
    parser.add_argument("--no-skopeo", action="store_true", help="skip the skopeo measurement")
    args = parser.parse_args(argv)
    bench_start = time.perf_counter()
    figures: dict[str, Any] = {"scale": args.scale, "parallel": args.parallel, "raw_workers": args.raw_workers}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp, Registries(Path(tmp)) as regs:
        log("building the reference set")
        build_s, refset = timed(lambda: build_reference_set(args.scale))
        unique, logical = refset.unique_bytes, refset.logical_bytes
        src = regs.start("source")
        push_s, _ = timed(lambda: push_set(src.url, refset, workers=8))
        problems = verify_tags(src.url, refset)
        if problems:
            raise RuntimeError(f"reference set push incomplete: {problems[:3]}")
        figures["set"] = {"images": len(refset.images), "repositories": len(refset.repos),
                          "manifests": refset.manifest_count, "blobs": len(refset.blobs()),
                          "unique_bytes": unique, "logical_bytes": logical,
                          "build_seconds": build_s, "push_seconds": push_s}
        log(f"set: {len(refset.images)} images, {unique / MB:.0f} MB unique, built {build_s:.1f}s, "
            f"pushed {push_s:.1f}s")
        figures["set"]["hash_cpu"] = hash_cpu(refset.blobs().values())
        figures["ferry_startup_cpu"] = startup_cpu(FERRY)
        rounds: dict[str, list[dict[str, Any]]] = {"ferry_cli": [], "ferry_one_run": [], "skopeo": [], "raw": []}
        for n in range(1, args.repeat + 1):
            # Interleaved rounds, so that drift (page cache, writeback, neighbours) hits every tool alike.
            log(f"round {n}/{args.repeat}: ferry CLI per repository")
            rounds["ferry_cli"].append(bench_ferry_cli(regs, src.host, refset, args.parallel))
            log(f"round {n}/{args.repeat}: ferry one run")
            rounds["ferry_one_run"].append(bench_ferry_one_run(regs, src.host, refset, args.parallel))
            if not args.no_skopeo:
                log(f"round {n}/{args.repeat}: skopeo per image")
                rounds["skopeo"].append(bench_skopeo(regs, src.host, refset))
            log(f"round {n}/{args.repeat}: raw GET / PUT")
            rounds["raw"].append(bench_raw(regs, src.url, refset, args.raw_workers))
        for name, runs in rounds.items():
            if runs:
                figures[name] = median_of(runs)
        log("peak RSS, one big layer")
        figures["rss"] = bench_rss(regs, src, args.scale, args.parallel, args.repeat)
        log("requests per artifact (through counting proxies)")
        figures["requests"] = bench_requests(regs)
    figures["bench_seconds"] = time.perf_counter() - bench_start

    cli, one = figures["ferry_cli"], figures["ferry_one_run"]
    sk = figures.get("skopeo", {}).get("seconds")
    raw = figures["raw"]
    rss = figures["rss"]
    ratios = {
        "ferry_one_run_over_skopeo": one["seconds"] / sk if sk else None,
        "ferry_cli_over_skopeo": cli["seconds"] / sk if sk else None,
        "ferry_one_run_over_raw_put": one["seconds"] / raw["put_seconds"],
        "ferry_cli_over_raw_put": cli["seconds"] / raw["put_seconds"],
        "peak_rss_mb": rss["peak_rss_mb"],
        "one_run_cpu_over_hash": cpu_ratio(one["cpu"], figures["ferry_startup_cpu"], figures["set"]["hash_cpu"]),
        "big_layer_cpu_over_hash": cpu_ratio(rss["cpu"], figures["ferry_startup_cpu"], rss["hash_cpu"]),
        "requests_per_artifact_one_run": figures["requests"]["one_run"]["per_artifact"],
        "requests_per_artifact_by_tag": figures["requests"]["by_tag"]["per_artifact"],
        "requests_per_artifact_single_post": figures["requests"]["one_run_single_post"]["per_artifact"],
    }
    figures["ratios"] = ratios
    figures["targets"] = TARGETS

    s = figures["set"]
    lines = [
        "",
        f"Reference set: {s['images']} images in {s['repositories']} repositories, {s['manifests']} manifests, "
        f"{s['blobs']} blobs (scale {args.scale:g})",
        f"  unique bytes  {unique / MB:9.1f} MB",
        f"  logical bytes {logical / MB:9.1f} MB  (sum over images)",
        "",
        f"{'measurement (median of ' + str(args.repeat) + ')':44s} {'wall':>10s} {'rate (unique)':>14s}   runs",
        row("ferry CLI per repo (--all-tags), sequential", cli, "seconds", unique),
        row("ferry one run (ferry copy SRC... DST)", one, "seconds", unique),
        row("skopeo copy --all per image, sequential", figures.get("skopeo"), "seconds", unique),
        row("raw parallel GET of unique blobs", raw, "get_seconds", raw["get_bytes"]),
        row("raw parallel PUT of unique blobs", raw, "put_seconds", raw["put_bytes"]),
        row(f"ferry copy, one image, {rss['layer_bytes'] / MiB:.0f} MiB layer", rss, "seconds", rss["layer_bytes"]),
        "",
        f"ferry one run: uploaded {one['report']['bytes_uploaded'] / MB:.1f} MB in "
        f"{one['report']['blobs_uploaded']} blobs, mounted {one['report']['blobs_mounted']}, "
        f"peak RSS {one['peak_rss_mb']:.0f} MB (median)",
        f"ferry CLI per repo: uploaded {cli['bytes_uploaded'] / MB:.1f} MB",
        f"CPU: ferry one run {one['cpu']:.2f} s, big layer {rss['cpu']:.2f} s, ferry start-up "
        f"{figures['ferry_startup_cpu']:.2f} s; sha256 of the set {s['hash_cpu']:.3f} s, of the big layer "
        f"{rss['hash_cpu']:.3f} s",
        f"requests (small single-platform images): one run {figures['requests']['one_run']['requests']} for "
        f"{figures['requests']['artifacts']} artifacts, one image by tag {figures['requests']['by_tag']['requests']}",
        "",
        "Targets:",
        f"  ferry one run / skopeo       "
        f"{target_line(ratios['ferry_one_run_over_skopeo'], TARGETS['ferry_over_skopeo'])}",
        f"  ferry CLI per repo / skopeo  "
        f"{target_line(ratios['ferry_cli_over_skopeo'], TARGETS['ferry_over_skopeo'])}",
        f"  ferry one run / raw PUT      "
        f"{target_line(ratios['ferry_one_run_over_raw_put'], TARGETS['ferry_over_raw_put'])}",
        f"  ferry CLI per repo / raw PUT "
        f"{target_line(ratios['ferry_cli_over_raw_put'], TARGETS['ferry_over_raw_put'])}",
        f"  peak RSS (big layer, max)    {target_line(ratios['peak_rss_mb'], TARGETS['peak_rss_mb'], ' MB')}",
        f"  CPU / sha256, one run        "
        f"{target_line(ratios['one_run_cpu_over_hash'], TARGETS['cpu_over_hash'])}",
        f"  CPU / sha256, big layer      "
        f"{target_line(ratios['big_layer_cpu_over_hash'], TARGETS['cpu_over_hash'])}",
        f"  requests / artifact, one run "
        f"{target_line(ratios['requests_per_artifact_one_run'], TARGETS['requests_per_artifact'])}",
        f"  requests / artifact, by tag  "
        f"{target_line(ratios['requests_per_artifact_by_tag'], TARGETS['requests_per_artifact'])}",
        f"  requests / artifact, one run, target with the single POST "
        f"{target_line(ratios['requests_per_artifact_single_post'], TARGETS['requests_per_artifact'])}",
    ]
    lines = [line for line in lines if line is not None]
    for name in ("ferry_cli", "ferry_one_run", "skopeo"):
        for problem in figures.get(name, {}).get("problems", [])[:5]:
            lines.append(f"  VERIFY {name}: {problem}")
    lines.append(f"\nbench wall time {figures['bench_seconds']:.0f} s")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
