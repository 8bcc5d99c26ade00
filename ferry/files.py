"""Local files written whole or not at all.

May be imported by every module of ``ferry``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: into a temporary file of its own in the same directory
    (never shared with a second writer), then renamed over ``path``. A reader sees the old content
    or the new, never part of it; the last of two writers wins whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
