"""Where blobs were last seen, remembered across runs (as skopeo's blob-info cache does), and the
chunked uploads in progress, so that a run killed mid-upload resumes where the registry stands.

A registry stores blobs per repository, so copying a second repository that shares base layers
with one copied yesterday would upload them again. With this cache the destination can mount
them from the repository that has them instead. Entries are hints: a failed mount just forgets
the entry and the blob is uploaded.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ferry.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS locations (
    registry TEXT NOT NULL,
    digest TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (registry, digest, repository)
);
CREATE TABLE IF NOT EXISTS upload_sessions (
    key TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    seen REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$FERRY_CACHE_DIR``, else ``$XDG_CACHE_HOME/ferry``, else ``~/.cache/ferry``; then the file."""
    return Settings.from_env().cache_dir / "blob-locations.sqlite3"


class BlobLocationCache:
    """A small SQLite table of (registry, digest) → repositories; safe to share between threads.

    ``path=None`` keeps it in memory. A cache that cannot be opened or written degrades to
    remembering nothing rather than failing a copy.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, timeout=5)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error):
            self._db = None

    def record(self, registry: str, repository: str, digest: str) -> None:
        self._execute("INSERT OR REPLACE INTO locations VALUES (?, ?, ?, ?)",
                      (registry, digest, repository, time.time()))

    def forget(self, registry: str, repository: str, digest: str) -> None:
        self._execute("DELETE FROM locations WHERE registry=? AND digest=? AND repository=?",
                      (registry, digest, repository))

    def repositories(self, registry: str, digest: str, limit: int = 3) -> list[str]:
        """Repositories of ``registry`` that held ``digest``, most recently seen first."""
        with self._lock:
            if self._db is None:
                return []
            try:
                rows = self._db.execute(
                    "SELECT repository FROM locations WHERE registry=? AND digest=? ORDER BY seen DESC LIMIT ?",
                    (registry, digest, limit)).fetchall()
            except sqlite3.Error:
                return []
        return [row[0] for row in rows]

    # -- upload sessions (ferry.registry.upload.UploadSessions): resumed by the next process --
    def get(self, key: str) -> str | None:
        with self._lock:
            if self._db is None:
                return None
            try:
                row = self._db.execute("SELECT location FROM upload_sessions WHERE key=?", (key,)).fetchone()
            except sqlite3.Error:
                return None
        return str(row[0]) if row else None

    def put(self, key: str, location: str) -> None:
        self._execute("INSERT OR REPLACE INTO upload_sessions VALUES (?, ?, ?)", (key, location, time.time()))

    def drop(self, key: str) -> None:
        self._execute("DELETE FROM upload_sessions WHERE key=?", (key,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _execute(self, sql: str, params: tuple[object, ...]) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute(sql, params)
                self._db.commit()
            except sqlite3.Error:
                pass
