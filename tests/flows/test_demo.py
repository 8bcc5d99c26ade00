"""`make demo` is one of the README's two commands: it must keep working end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_export_copy_import_and_verifies_digests():
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "FERRY_CLAIMS_DIR")}
    completed = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True,
                               timeout=300, env=env)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "every digest identical" in completed.stdout
    assert "deleted after verification: True" in completed.stdout
    assert completed.stdout.count(" yes") == 3
