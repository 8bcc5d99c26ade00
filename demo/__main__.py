"""``make demo``: two local registries, sample content of every kind, copied with ``ferry copy``.

Starts a plain source registry and a target registry that requires a password (htpasswd), seeds
the source with a multi-arch image (plus a signature and an SBOM), a Docker manifest list, an
ORAS artifact and a Helm chart, copies each with the real ``ferry`` command, checks every digest
on the target with skopeo, and prints a summary table. Everything runs on loopback and stops at
the end. Later issues grow this into export → copy → import through Azure Blob Storage.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import content
from tests.harness.registry import start_registry

ROOT = Path(__file__).resolve().parent.parent
FERRY = str(ROOT / ".venv" / "bin" / "ferry")
KINDS = {
    "multiarch": "multi-arch OCI index (amd64+arm64) with signature and SBOM",
    "docker_list": "Docker schema2 manifest list",
    "artifact": "ORAS artifact (custom media types)",
    "helm": "Helm chart",
}


def skopeo_digest(host: str, repository: str, tag: str, creds: tuple[str, str] | None) -> str:
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if creds:
        command += ["--creds", f"{creds[0]}:{creds[1]}"]
    raw = subprocess.run([*command, f"docker://{host}/{repository}:{tag}"], check=True, capture_output=True,
                         timeout=60).stdout
    return content.sha256_digest(raw)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ferry-demo-"))
    source = start_registry(workdir / "source")
    target = start_registry(workdir / "target", auth="htpasswd")
    try:
        print(f"source registry  {source.host} (anonymous)")
        print(f"target registry  {target.host} (htpasswd user {target.username!r})\n")
        samples = content.sample_set(seed=42)
        repos = content.push_samples(source.url, samples, prefix="demo", tag="1.0")
        assert target.username and target.password
        rows = []
        for kind, description in KINDS.items():
            repository = repos[kind]
            command = [FERRY, "copy", f"{source.host}/{repository}:1.0", f"{target.host}/mirror/{kind}:1.0",
                       "--dest-creds", f"{target.username}:{target.password}"]
            shown = " ".join([*command[1:-2], "--dest-creds", "***"]).replace(str(ROOT) + "/", "")
            print(f"$ ferry {shown}")
            started = time.monotonic()
            completed = subprocess.run(command, capture_output=True, text=True)
            elapsed = time.monotonic() - started
            print(completed.stdout.rstrip() or completed.stderr.rstrip())
            got = skopeo_digest(target.host, f"mirror/{kind}", "1.0", target.credentials)
            expected = samples[kind].digest
            rows.append((kind, description, expected, got == expected and completed.returncode == 0, elapsed))
        print("\n{:<12} {:<58} {:<20} {:>6} {:>7}".format("artifact", "kind", "digest", "match", "time"))
        for kind, description, digest, ok, elapsed in rows:
            print(f"{kind:<12} {description:<58} {digest[:19]:<20} {'yes' if ok else 'NO':>6} {elapsed:>6.2f}s")
        all_ok = all(row[3] for row in rows)
        print("\nall digests identical on the target (checked with skopeo)" if all_ok else "\nDEMO FAILED")
        return 0 if all_ok else 1
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
