"""What ferry copy prints: a live progress display on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.harness import content as c

ROOT = Path(__file__).resolve().parents[2]


def run_in_terminal(*args: str, env: dict[str, str]) -> str:
    """Run ``ferry ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "cli", *args], stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, cwd=ROOT, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=120)
    os.close(leader)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_terminal_gets_a_progress_display_and_pipes_get_plain_lines(registry, registry_b, content, tmp_path):
    c.push(registry.url, "tty/app", content["multiarch"], tag="v1")
    env = {**os.environ, "FERRY_CACHE_DIR": str(tmp_path), "TERM": "xterm", "COLUMNS": "120"}
    shown = run_in_terminal("copy", f"{registry.host}/tty/app:v1", f"{registry_b.host}/tty/app:v1", env=env)
    assert "✓" in shown and "tty/app:v1" in shown          # per-artifact line from the progress display
    assert "\x1b[" in shown                               # terminal control sequences: a live display
    piped = subprocess.run([sys.executable, "-m", "cli", "copy", f"{registry.host}/tty/app:v1",
                            f"{registry_b.host}/tty/piped:v1"], capture_output=True, text=True, env=env, cwd=ROOT,
                           timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout + piped.stderr and "✓" not in piped.stderr
    assert piped.stdout.startswith("copied  tty/app:v1 -> tty/piped:v1 sha256:")
