"""Shared helpers for Ferry's benchmarks (``bench/copy.py``, later ``bench/transfer.py``).

* Fast content: `fast_layer` makes a valid ``tar+gzip`` layer (one file of ``os.urandom`` bytes,
  gzip at level 0 = stored deflate blocks) at ~100+ MB/s; the harness's `random_layer`
  (gzip level 6 of random data) runs at ~25 MB/s and re-decompresses for the diff_id.
  Digests (blob and diff_id) are computed once and kept.
* `build_reference_set`: ~30 images in 10 repositories, ~450 MB unique, base layers shared by
  groups of repositories, two repositories of multi-arch indexes.
* `push_set`: pushes it with plain httpx in parallel (each blob uploaded once, then mounted).
* `Registries`: fresh ``docker-registry`` instances under one temp dir, storage removed on stop.
* `run_sampled`: runs a command, samples its RSS (children included) every 20 ms.
* `raw_get` / `raw_put`: the raw registry limits (parallel GET / monolithic POST+PUT).
* `verify_tags`: checks that every tag of the set in a target points at the source digest.
* `CpuMeter`: CPU seconds of named server processes and of reaped subprocesses over a window.
* Reporting: `log`, `settle`, `median_of`, `row`, `target_line`.

Nothing here imports ``ferry``; the harness (``tests/harness``) is used only to start registries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness.registry import RegistryServer, start_registry  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST,
                             "application/vnd.docker.distribution.manifest.list.v2+json",
                             "application/vnd.docker.distribution.manifest.v2+json"])
MB = 1_000_000
MiB = 1024 * 1024


def sha256_digest(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- content --------------------------------------------------------------------------------
@dataclass(eq=False)
class Blob:
    """A blob with its digest computed once (the harness's Blob rehashes on every access)."""

    media_type: str
    data: bytes = field(repr=False)
    digest: str = ""
    diff_id: str | None = None

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def fast_layer(size: int, name: str = "data.bin") -> Blob:
    """A valid OCI tar+gzip layer holding one file of `size` random bytes (blob ≈ size + 1.5 KB).

    The gzip stream uses stored blocks (level 0): valid for every reader, and fast to make.
    The diff_id (sha256 of the tar) is computed while building.
    """
    payload = os.urandom(size)
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    pad = b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024  # padding + two end-of-archive blocks
    tar_hash = hashlib.sha256()
    gz = zlib.compressobj(0, zlib.DEFLATED, 31)  # wbits 31 = gzip wrapper
    parts: list[bytes] = []
    for piece in (header, payload, pad):
        tar_hash.update(piece)
        parts.append(gz.compress(piece))
    parts.append(gz.flush())
    data = b"".join(parts)
    return Blob(OCI_LAYER, data, diff_id="sha256:" + tar_hash.hexdigest())


def fast_layers(sizes: Sequence[int], workers: int = 2) -> list[Blob]:
    """`fast_layer` for each size, in threads (urandom, zlib and sha256 release the GIL)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda iv: fast_layer(iv[1], f"data/file-{iv[0]}.bin"), enumerate(sizes)))


@dataclass(eq=False)
class Manifest:
    media_type: str
    raw: bytes = field(repr=False)
    blobs: list[Blob] = field(default_factory=list, repr=False)
    children: list[Manifest] = field(default_factory=list, repr=False)
    digest: str = ""

    def __post_init__(self) -> None:
        self.digest = sha256_digest(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def all_manifests(self) -> list[Manifest]:
        """Children first, then self."""
        out: list[Manifest] = []
        for child in self.children:
            out.extend(child.all_manifests())
        out.append(self)
        return out

    def all_blobs(self) -> dict[str, Blob]:
        found: dict[str, Blob] = {}
        for m in self.all_manifests():
            for b in m.blobs:
                found.setdefault(b.digest, b)
        return found

    def logical_bytes(self) -> int:
        """What a naive copy of this image moves: every manifest and every blob it names."""
        return sum(m.size + sum(b.size for b in m.blobs) for m in self.all_manifests())


def oci_image(layers: Sequence[Blob], platform: tuple[str, ...] = ("linux", "amd64"), label: str = "") -> Manifest:
    plat = dict(zip(("os", "architecture", "variant"), platform, strict=False))
    config = {
        "created": "2024-01-01T00:00:00Z", "architecture": plat["architecture"], "os": plat["os"],
        **({"variant": plat["variant"]} if "variant" in plat else {}),
        "config": {"Cmd": ["/bin/sh"], "Labels": {"dev.ferry.bench": label}},
        "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }
    config_blob = Blob(OCI_CONFIG, compact(config))
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_blob.descriptor(),
           "layers": [b.descriptor() for b in layers]}
    m = Manifest(OCI_MANIFEST, compact(doc), [config_blob, *layers])
    m.platform = plat  # type: ignore[attr-defined]
    return m


def oci_index(images: Sequence[Manifest]) -> Manifest:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [m.descriptor(platform=m.platform) for m in images]}  # type: ignore[attr-defined]
    return Manifest(OCI_INDEX, compact(doc), children=list(images))


@dataclass
class ReferenceSet:
    """Tagged images by repository; `images` lists (repo, tag, root manifest) in push order."""

    images: list[tuple[str, str, Manifest]]

    @property
    def repos(self) -> list[str]:
        return list(dict.fromkeys(repo for repo, _, _ in self.images))

    def tags(self, repo: str) -> list[str]:
        return [t for r, t, _ in self.images if r == repo]

    def blobs(self) -> dict[str, Blob]:
        found: dict[str, Blob] = {}
        for _, _, m in self.images:
            for d, b in m.all_blobs().items():
                found.setdefault(d, b)
        return found

    def blob_repos(self) -> dict[str, list[str]]:
        """digest -> repositories that need it, in push order."""
        where: dict[str, list[str]] = {}
        for repo, _, m in self.images:
            for d in m.all_blobs():
                lst = where.setdefault(d, [])
                if repo not in lst:
                    lst.append(repo)
        return where

    @property
    def unique_bytes(self) -> int:
        return sum(b.size for b in self.blobs().values())

    @property
    def logical_bytes(self) -> int:
        return sum(m.logical_bytes() for _, _, m in self.images)

    @property
    def manifest_count(self) -> int:
        return sum(len(m.all_manifests()) for _, _, m in self.images)


def build_reference_set(scale: float = 1.0) -> ReferenceSet:
    """~30 images, ~450 MB unique at scale 1.

    10 repositories ``bench/app0..9`` with 3 tags each. Repos 0-3 share base layer 0 (80 MB),
    4-6 base 1 (70 MB), 7-9 base 2 (60 MB). Each repository has its own runtime layer (15 MB,
    shared by its tags) and each tag its own app layer (3 MB). Repos 3 and 9 hold multi-arch
    indexes (linux/amd64 + linux/arm64/v8; the arm64 image has its own app layer).
    """
    def sz(n_mb: float) -> int:
        return max(1024, int(n_mb * MB * scale))

    bases = [80, 70, 60]
    base_of = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    multiarch = {3, 9}
    sizes = [sz(b) for b in bases] + [sz(15)] * 10
    n_app = sum((2 if r in multiarch else 1) * 3 for r in range(10))
    sizes += [sz(3)] * n_app
    layers = fast_layers(sizes)
    base_layers, runtime, apps = layers[:3], layers[3:13], iter(layers[13:])
    images: list[tuple[str, str, Manifest]] = []
    for r in range(10):
        repo = f"bench/app{r}"
        common = [base_layers[base_of[r]], runtime[r]]
        for t in range(3):
            tag = f"v{t + 1}"
            amd = oci_image([*common, next(apps)], ("linux", "amd64"), f"{repo}:{tag}")
            if r in multiarch:
                arm = oci_image([*common, next(apps)], ("linux", "arm64", "v8"), f"{repo}:{tag}")
                images.append((repo, tag, oci_index([amd, arm])))
            else:
                images.append((repo, tag, amd))
    return ReferenceSet(images)


# --- registries -----------------------------------------------------------------------------
class Registries:
    """Starts fresh registries under `root`; `drop(server)` stops one and deletes its storage."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._live: dict[str, tuple[RegistryServer, Path]] = {}
        self._n = 0

    def start(self, name: str) -> RegistryServer:
        self._n += 1
        workdir = self.root / f"{self._n:02d}-{name}"
        server = start_registry(workdir)
        self._live[server.host] = (server, workdir)
        return server

    def drop(self, server: RegistryServer) -> None:
        _, workdir = self._live.pop(server.host)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def pids(self) -> list[int]:
        """The pids of the running registries."""
        return [pid for server, _ in self._live.values() if (pid := server.process.pid) is not None]

    def close(self) -> None:
        for host in list(self._live):
            self.drop(self._live[host][0])

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def fresh_registry(registries: Registries, name: str) -> Iterator[RegistryServer]:
    server = registries.start(name)
    try:
        yield server
    finally:
        registries.drop(server)


def http_client(url: str, workers: int = 16) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120.0,
                        limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2))


def _check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(f"{response.request.method} {response.request.url} -> {response.status_code}: "
                           f"{response.text[:300]}")
    return response


def upload_blob(client: httpx.Client, repo: str, blob: Blob) -> None:
    """Monolithic upload: POST to open, one PUT with the bytes and ?digest=."""
    location = _check(client.post(f"/v2/{repo}/blobs/uploads/"), 202).headers["Location"]
    sep = "&" if "?" in location else "?"
    _check(client.put(f"{location}{sep}digest={blob.digest}", content=blob.data,
                      headers={"Content-Type": "application/octet-stream"}), 201)


def mount_blob(client: httpx.Client, repo: str, digest: str, from_repo: str) -> None:
    _check(client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": from_repo}), 201)


def put_manifest(client: httpx.Client, repo: str, manifest: Manifest, ref: str) -> None:
    _check(client.put(f"/v2/{repo}/manifests/{ref}", content=manifest.raw,
                      headers={"Content-Type": manifest.media_type}), 201)


def push_set(url: str, refset: ReferenceSet, workers: int = 8) -> None:
    """Upload each blob once (to its first repository), mount it into the others, then manifests."""
    blobs = refset.blobs()
    where = refset.blob_repos()
    with http_client(url, workers) as client, ThreadPoolExecutor(workers) as pool:
        order = sorted(blobs, key=lambda d: -blobs[d].size)
        list(pool.map(lambda d: upload_blob(client, where[d][0], blobs[d]), order))
        mounts = [(repo, d, where[d][0]) for d in order for repo in where[d][1:]]
        list(pool.map(lambda job: mount_blob(client, *job), mounts))

        def push_repo(repo: str) -> None:
            for r, tag, root in refset.images:
                if r != repo:
                    continue
                for m in root.all_manifests():
                    put_manifest(client, repo, m, tag if m is root else m.digest)

        list(pool.map(push_repo, refset.repos))


def push_image(url: str, repo: str, tag: str, root: Manifest) -> None:
    with http_client(url, 4) as client:
        for blob in root.all_blobs().values():
            upload_blob(client, repo, blob)
        for m in root.all_manifests():
            put_manifest(client, repo, m, tag if m is root else m.digest)


def verify_tags(url: str, refset: ReferenceSet) -> list[str]:
    """Problems found: tags missing in `url` or pointing at another digest than the source's."""
    problems: list[str] = []
    with http_client(url, 4) as client:
        for repo, tag, root in refset.images:
            r = client.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
            got = r.headers.get("Docker-Content-Digest")
            if r.status_code != 200:
                problems.append(f"{repo}:{tag} missing ({r.status_code})")
            elif got != root.digest:
                problems.append(f"{repo}:{tag} is {got}, expected {root.digest}")
    return problems


# --- raw limits -----------------------------------------------------------------------------
def raw_get(url: str, refset: ReferenceSet, workers: int = 8) -> tuple[float, int]:
    """GET every unique blob once in parallel, discarding the bytes: (seconds, bytes read)."""
    where = refset.blob_repos()
    blobs = refset.blobs()
    order = sorted(blobs, key=lambda d: -blobs[d].size)

    def get(client: httpx.Client, digest: str) -> int:
        n = 0
        with client.stream("GET", f"/v2/{where[digest][0]}/blobs/{digest}") as r:
            _check(r, 200)
            for chunk in r.iter_raw(MiB):
                n += len(chunk)
        return n

    with http_client(url, workers) as client, ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        total = sum(pool.map(lambda d: get(client, d), order))
        return time.perf_counter() - start, total


def raw_put(url: str, refset: ReferenceSet, workers: int = 8) -> tuple[float, int]:
    """Monolithic POST+PUT of every unique blob (from memory) in parallel: (seconds, bytes sent)."""
    where = refset.blob_repos()
    blobs = refset.blobs()
    order = sorted(blobs, key=lambda d: -blobs[d].size)
    with http_client(url, workers) as client, ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(lambda d: upload_blob(client, where[d][0], blobs[d]), order))
        return time.perf_counter() - start, sum(b.size for b in blobs.values())


# --- processes ------------------------------------------------------------------------------
@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    seconds: float
    peak_rss: int
    stdout: str
    stderr: str
    #: User + system CPU seconds of the process and its children (from the rusage of reaped children).
    cpu: float = 0.0

    def check(self) -> RunResult:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}:\n{self.stderr[-2000:]}"
                               f"\n{self.stdout[-2000:]}")
        return self


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    with contextlib.suppress(psutil.Error):
        total += proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    return total


def run_sampled(argv: Sequence[str | Path], *, interval: float = 0.02, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> RunResult:
    """Run `argv`, sampling the RSS of it and its children every `interval` seconds."""
    args = [str(a) for a in argv]
    cpu_before = reaped_children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    ps = psutil.Process(proc.pid)
    peak = 0
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for t in readers:
        t.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(ps))
        time.sleep(interval)
    seconds = time.perf_counter() - start
    for t in readers:
        t.join()
    return RunResult(args, proc.returncode, seconds, peak, b"".join(out).decode(errors="replace"),
                     b"".join(err).decode(errors="replace"), reaped_children_cpu() - cpu_before)


def run_quiet(argv: Sequence[str | Path], *, env: dict[str, str] | None = None) -> RunResult:
    """Run `argv` without sampling (lower overhead); output captured."""
    args = [str(a) for a in argv]
    cpu_before = reaped_children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    return RunResult(args, proc.returncode, time.perf_counter() - start, 0, proc.stdout, proc.stderr,
                     reaped_children_cpu() - cpu_before)


def fresh_cache_env(root: Path) -> dict[str, str]:
    """The environment with Ferry's blob location cache in a new empty directory under `root`,
    so every measurement starts cold and no run benefits from another's hints."""
    directory = Path(tempfile.mkdtemp(prefix="ferry-cache-", dir=root))
    return {**os.environ, "FERRY_CACHE_DIR": str(directory)}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# --- CPU accounting -------------------------------------------------------------------------
def process_cpu(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by `pids` and their live descendants."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
    return total


def reaped_children_cpu() -> float:
    """User + system CPU seconds of this process's children that have exited and been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU seconds spent between `start()` and `stop()` by named groups of server processes
    (each a callable giving the current pids) and by ``subprocesses``: children of this
    process that exited in the window (e.g. one ``ferry`` run; servers still running are not
    counted there). ``bench`` is this process's own CPU (client-side work such as SDK calls);
    ``machine_busy`` the whole machine's non-idle CPU seconds without steal (all cores; wall
    times cores = saturated), ``machine_steal`` the time the hypervisor gave to other guests."""

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}

    def _snapshot(self) -> dict[str, float]:
        snap = {name: process_cpu(pids()) for name, pids in self.groups.items()}
        snap["subprocesses"] = reaped_children_cpu()
        own = resource.getrusage(resource.RUSAGE_SELF)
        snap["bench"] = own.ru_utime + own.ru_stime
        machine = psutil.cpu_times()
        steal = getattr(machine, "steal", 0.0)
        snap["machine_busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0) - steal
        snap["machine_steal"] = steal
        return snap

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        return {name: end[name] - self._start.get(name, 0.0) for name in end}


def hash_cpu(blobs: Iterable[Blob], rounds: int = 3) -> float:
    """CPU seconds hashlib.sha256 takes over the bytes of ``blobs`` (one thread; best of ``rounds``):
    the yardstick of Ferry's CPU per byte, which must verify every byte once."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for blob in blobs:
            hashlib.sha256(blob.data).digest()
        best = min(best, time.process_time() - start)
    return best


def startup_cpu(ferry: Path) -> float:
    """CPU seconds of ``ferry copy --help`` (interpreter start and imports), best of three."""
    return min(run_quiet([ferry, "copy", "--help"]).check().cpu for _ in range(3))


def cpu_ratio(cpu: float, startup: float, hashing: float) -> float | None:
    """Ferry's CPU net of start-up over hashing CPU for the same bytes."""
    return (cpu - startup) / hashing if hashing > 0 else None


# --- reporting ------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def settle() -> None:
    """Flush dirty pages (earlier scenarios wrote GBs) so writeback does not land in a timing."""
    os.sync()


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's fields with every number replaced by its median over `runs` (recursing
    into dicts). ``*_runs`` lists keep each run's value; ``problems`` is the union over runs."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in runs]
            out[key] = statistics.median(values)
            out[f"{key}_runs"] = values
        elif isinstance(value, dict) and all(isinstance(r.get(key), dict) for r in runs):
            out[key] = median_of([r[key] for r in runs])
        elif key == "problems":
            out[key] = sorted({p for r in runs for p in r[key]})
        else:
            out[key] = value
    return out


def fmt_seconds(v: float | None) -> str:
    return "n/a" if v is None else f"{v:8.2f} s"


def rate(nbytes: int, seconds: float | None) -> str:
    return "" if not seconds or not nbytes else f"{nbytes / MB / seconds:7.0f} MB/s"


def row(label: str, fig: dict[str, Any] | None, key: str, nbytes: int, width: int = 44) -> str:
    """One table line: label, median seconds, rate over `nbytes`, and every run's value."""
    value = fig.get(key) if fig else None
    runs = " ".join(f"{v:.2f}" for v in (fig or {}).get(f"{key}_runs", []))
    return f"{label:{width}s} {fmt_seconds(value)} {rate(nbytes, value):>14s}   {runs}"


def target_line(value: float | None, limit: float, unit: str = "") -> str:
    if value is None:
        return "n/a"
    verdict = "ok" if value <= limit else "MISSED"
    return f"{value:6.2f}{unit}  (target <= {limit:g}{unit})  {verdict}"
