"""Child processes for the harness: free ports, start, readiness, stop, restart.

Contract: a `ManagedProcess` only ever signals the pid it started itself (never a process
group or a name), writes the child's stdout and stderr to one log file, and raises
`ServiceStartError` with the tail of that log when the child dies or is not ready in time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["ManagedProcess", "ServiceStartError", "free_port"]

_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class ServiceStartError(RuntimeError):
    """A service did not start or did not become ready; the message carries its log tail."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    """One child process with its log file.

    `argv` is run as given (no shell). `env` entries are added to the current environment.
    The log file `log_dir/<name>.log` is appended to, so a restart keeps the earlier output.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_dir: Path,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = dict(env or {})
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready_url: str | None = None
        self._ready_timeout = 20.0

    @property
    def pid(self) -> int | None:
        """The pid of the running child, or None when not started or stopped."""
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        """True while the child we started has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ManagedProcess:
        """Start the command; returns self. Raises `ServiceStartError` if it cannot be executed."""
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- start: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.env},
                    cwd=self.cwd,
                    start_new_session=True,  # a Ctrl-C on pytest must not hit the child first
                )
            except OSError as exc:
                raise ServiceStartError(f"cannot run {self.argv[0]}: {exc}") from exc
        _LIVE.add(self)
        return self

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log file ('' if there is none)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, timeout: float = 20.0) -> None:
        """Poll `url` until any HTTP answer arrives (401 and 404 count as ready).

        Raises `ServiceStartError` with the log tail if the child exits or `timeout` passes.
        The url and timeout are remembered for `restart()`.
        """
        self._ready_url, self._ready_timeout = url, timeout
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServiceStartError(
                    f"{self.name} exited (code {code}) before {url} answered\n"
                    f"--- {self.log_path} ---\n{self.log_tail()}"
                )
            try:
                httpx.get(url, timeout=1.0)
                return
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"{self.name} not ready at {url} after {timeout:.0f}s ({last_error})\n"
                    f"--- {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the pid we started, if it is still running."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def wait_ready(self) -> None:
        """Repeat the last `wait_http` (same url and timeout); no-op if there was none."""
        if self._ready_url is not None:
            self.wait_http(self._ready_url, self._ready_timeout)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the pid we started, SIGKILL it after `grace` seconds, and reap it. Idempotent."""
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)

    def restart(self, grace: float = 5.0) -> None:
        """Stop, then start the same command (so the same port) and wait for readiness again."""
        self.stop(grace)
        self.start()
        self.wait_ready()


@atexit.register
def _stop_leftovers() -> None:
    """Last resort: stop children a crashed fixture did not stop (each by its own pid)."""
    for proc in list(_LIVE):
        proc.stop(grace=2.0)
