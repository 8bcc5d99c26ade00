"""Shared plumbing for the harness's in-process HTTP servers (token server, fakes, identity)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler (keep-alive) that does not log to stderr, with small reply helpers."""

    protocol_version = "HTTP/1.1"
    server_version = "ferry-harness"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """Read the request body given by Content-Length (b'' if none)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_form(self) -> dict[str, str]:
        """Parse an application/x-www-form-urlencoded body; the last value of a key wins."""
        form = parse_qs(self.read_body().decode(), keep_blank_values=True)
        return {k: v[-1] for k, v in form.items()}

    def reply(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        """Send a complete response; with `head` only the headers (Content-Length kept)."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def reply_json(self, status: int, obj: Any, *, headers: dict[str, str] | None = None) -> None:
        """Send `obj` as a JSON body."""
        self.reply(status, json.dumps(obj).encode(), headers=headers)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port chosen by the OS) served by a daemon thread.

    Handlers reach the owner through `self.server.owner`. Call `stop()` to shut down.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: object, port: int = 0) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # keep-alive handler threads must not block stop()
        self._httpd.owner = owner  # type: ignore[attr-defined]
        self.port: int = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket. Idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
