"""One Azurite instance (blob, queue, table) on free loopback ports, holding several accounts.

Accounts come from ``AZURITE_ACCOUNTS`` (which disables the default devstoreaccount1);
server-side copies work only between accounts of the same instance, so tests that need two
storage accounts use two accounts here, not two instances.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .procs import ManagedProcess, free_port

__all__ = ["AzuriteServer", "find_azurite", "start_azurite"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_azurite() -> Path | None:
    """The azurite launcher: ``$FERRY_AZURITE_BIN`` if set, else ``<repo>/node_modules/.bin/azurite``."""
    override = os.environ.get("FERRY_AZURITE_BIN")
    candidate = Path(override) if override else REPO_ROOT / "node_modules" / ".bin" / "azurite"
    return candidate if candidate.exists() else None


@dataclass
class AzuriteServer:
    """A running Azurite. `accounts` maps account name -> base64 key."""

    blob_port: int
    queue_port: int
    table_port: int
    accounts: dict[str, str]
    location: Path
    process: ManagedProcess = field(repr=False)

    def blob_endpoint(self, account: str) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{account}"

    def connection_string(self, account: str) -> str:
        """A full connection string (blob, queue and table endpoints) for `account`."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={self.accounts[account]};"
            f"BlobEndpoint={self.blob_endpoint(account)};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{account};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{account};"
        )

    @property
    def connection_strings(self) -> dict[str, str]:
        """Account name -> connection string."""
        return {name: self.connection_string(name) for name in self.accounts}

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait until Azurite logs that its three services closed (it saves its
        databases then), then end the pid: Azurite's node process does not exit by itself
        after closing while AZURITE_ACCOUNTS is set. Idempotent."""
        if self.process.running():
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.running() and time.monotonic() < deadline:
                tail = self.process.log_path.read_text(errors="replace").rpartition("--- start:")[2]
                if tail.count("successfully closed") >= 3:
                    break
                time.sleep(0.05)
        self.process.stop(grace=0.5)

    def restart(self) -> None:
        """Stop and start on the same ports and location (data persists on disk)."""
        self.stop()
        self.process.start()
        self.process.wait_ready()


def start_azurite(
    workdir: Path, binary: Path, accounts: Sequence[str] = ("acct1", "acct2"), ready_timeout: float = 30.0
) -> AzuriteServer:
    """Start Azurite with `accounts` (random keys), data under ``workdir/data``; waits for all three ports."""
    workdir = Path(workdir)
    location = workdir / "data"
    location.mkdir(parents=True, exist_ok=True)
    keys = {name: base64.b64encode(secrets.token_bytes(64)).decode() for name in accounts}
    blob, queue, table = free_port(), free_port(), free_port()
    argv = [
        str(binary),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
        "--location", str(location),
        "--skipApiVersionCheck", "--loose", "--silent",
    ]
    env = {"AZURITE_ACCOUNTS": ";".join(f"{n}:{k}" for n, k in keys.items())}
    process = ManagedProcess(argv, log_dir=workdir, name=f"azurite-{blob}", env=env)
    process.start()
    server = AzuriteServer(blob, queue, table, keys, location, process)
    try:
        for port in (queue, table, blob):  # blob last: restart() re-waits on the remembered url
            process.wait_http(f"http://127.0.0.1:{port}/", ready_timeout)
    except BaseException:
        process.stop()
        raise
    return server
