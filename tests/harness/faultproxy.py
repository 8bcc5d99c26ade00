"""A fault-injecting HTTP/1.1 reverse proxy on loopback, in front of a real registry.

Each client connection carries one request: the proxy reads the request head, forwards it
upstream on a fresh connection with ``Connection: close`` (the ``Host`` header is kept, so the
registry builds upload ``Location`` URLs that point back at the proxy), streams the body
(``Content-Length`` or chunked) and then relays the response bytes until the upstream closes.

Fault: `cut_request` makes the proxy forward only the first ``after_body_bytes`` bytes of the
body of the ``nth`` matching request (all of it when the body is shorter: then only the response
is lost), then end the upstream request (half-close, and wait until the upstream has finished
with it) and reset the client connection -- a connection that dies in the middle of an upload.

Counters (under a lock): `requests` counts ``"METHOD /path"`` (query stripped) for every
request seen, `body_bytes` the body bytes forwarded upstream per method, `cuts` the faults fired.
This module never imports `ferry`.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Cut", "FaultProxy"]

_MAX_HEAD = 64 * 1024


@dataclass
class Cut:
    """Cut the `nth` (1-based) request with `method` whose path contains `path_substring`."""

    method: str
    nth: int
    after_body_bytes: int
    path_substring: str = ""
    seen: int = 0
    fired: bool = False


class _Closed(Exception):
    """The client went away before a whole request arrived."""


class FaultProxy:
    """Proxy ``127.0.0.1:<port>`` -> ``upstream`` (``host:port``). Starts on construction; `stop()` ends it."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.requests: Counter[str] = Counter()
        self.body_bytes: Counter[str] = Counter()
        self.cuts = 0
        self._faults: list[Cut] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()

    # --- control ---

    def cut_request(self, method: str, nth: int, after_body_bytes: int, path_substring: str = "") -> Cut:
        """Arm a cut of the `nth` matching request (counted from now) after `after_body_bytes` body bytes."""
        cut = Cut(method.upper(), nth, after_body_bytes, path_substring)
        with self._lock:
            self._faults.append(cut)
        return cut

    def count(self, path_substring: str = "", method: str | None = None) -> int:
        """Requests so far whose ``"METHOD /path"`` contains `path_substring` (and `method`)."""
        with self._lock:
            return sum(
                n for key, n in self.requests.items()
                if path_substring in key and (method is None or key.startswith(method + " "))
            )

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.body_bytes.clear()
            self.cuts = 0

    def stop(self) -> None:
        """Stop accepting and close the listener. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    # --- serving ---

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_cut(self, method: str, path: str) -> Cut | None:
        with self._lock:
            for cut in self._faults:
                if cut.fired or cut.method != method or cut.path_substring not in path:
                    continue
                cut.seen += 1
                if cut.seen == cut.nth:
                    cut.fired = True
                    return cut
        return None

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = client.makefile("rb")
        try:
            head, method, path, headers = _read_head(reader)
            with self._lock:
                self.requests[f"{method} {urlsplit(path).path}"] += 1
            cut = self._take_cut(method, path)
            upstream = socket.create_connection(self.upstream, timeout=60)
            upstream.sendall(_rewrite_head(head))
            sent = self._forward_body(reader, upstream, headers, cut.after_body_bytes if cut else None)
            with self._lock:
                self.body_bytes[method] += sent
            if cut is not None:
                with self._lock:
                    self.cuts += 1
                self._abort(client, upstream)
                return
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except (_Closed, OSError, ValueError):
            pass
        finally:
            reader.close()  # the socket's file descriptor stays open while its makefile() is
            for sock in (upstream, client):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _forward_body(
        self, reader: io.BufferedReader, upstream: socket.socket, headers: dict[str, str], limit: int | None
    ) -> int:
        """Forward the request body (at most `limit` body bytes when given); returns the body bytes sent."""
        sent = 0

        def forward(data: bytes) -> bool:
            """Send body bytes within the limit; False once the limit is reached."""
            nonlocal sent
            if limit is not None and sent + len(data) >= limit:
                upstream.sendall(data[: limit - sent])
                sent = limit
                return False
            upstream.sendall(data)
            sent += len(data)
            return True

        if limit is not None and limit <= 0:
            return 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = reader.readline(_MAX_HEAD)
                if not size_line:
                    raise _Closed("client closed mid-body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                upstream.sendall(size_line)
                if size == 0:
                    while (line := reader.readline(_MAX_HEAD)) not in (b"\r\n", b"\n", b""):
                        upstream.sendall(line)
                    upstream.sendall(b"\r\n")
                    return sent
                data = reader.read(size)
                if len(data) < size:
                    raise _Closed("client closed mid-body")
                if not forward(data):
                    return sent
                upstream.sendall(reader.read(2))
        remaining = int(headers.get("content-length") or 0)
        while remaining:
            data = reader.read(min(remaining, 65536))
            if not data:
                raise _Closed("client closed mid-body")
            remaining -= len(data)
            if not forward(data):
                return sent
        return sent

    def _abort(self, client: socket.socket, upstream: socket.socket) -> None:
        """End the upstream request early, let the upstream finish with it, then reset the client."""
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)
        upstream.settimeout(10)
        with contextlib.suppress(OSError):
            while upstream.recv(65536):
                pass
        # An abortive close (RST) so the client sees the connection die, not a clean end.
        with contextlib.suppress(OSError):
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_head(reader: io.BufferedReader) -> tuple[bytes, str, str, dict[str, str]]:
    lines: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            raise _Closed("no request")
        total += len(line)
        if total > _MAX_HEAD:
            raise ValueError("request head too large")
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line)
    if not lines:
        raise _Closed("empty request")
    method, path, _ = lines[0].decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return b"".join(lines) + b"\r\n", method.upper(), path, headers


def _rewrite_head(head: bytes) -> bytes:
    """The request head with ``Connection: close`` instead of whatever the client asked."""
    lines = head.split(b"\r\n")
    kept = [line for line in lines[:-2] if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])
