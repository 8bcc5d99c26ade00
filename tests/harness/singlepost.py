"""A registry front that speaks the monolithic single-``POST`` upload, which distribution 2.8 lacks.

The OCI distribution spec lets a client upload a blob in one request, ``POST
/v2/<name>/blobs/uploads/?digest=<digest>`` with the bytes, answered ``201 Created``. Debian's
``docker-registry`` (distribution 2.8.2) answers such a POST with 202 and an upload session, and
ignores the body. `SinglePostRegistry` stands in front of a real registry: a POST with ``digest``
and a body is carried out upstream as POST + PUT and answered 201 (or with the upstream's error);
every other request is forwarded as it is, with the ``Host`` header kept (so ``Location`` URLs
point back here). `requests` counts ``"METHOD /path"`` as the client sent them, `single_posts` the
single-request uploads served. This module never imports ``ferry``.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx

from ._http import LoopbackServer, QuietHandler

__all__ = ["SinglePostRegistry"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class SinglePostRegistry:
    """Serves at `url` / `host` in front of ``upstream`` (``host:port``); `stop()` when done."""

    def __init__(self, upstream: str) -> None:
        self.upstream = f"http://{upstream}"
        self.requests: Counter[str] = Counter()
        self.single_posts = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60.0)
        self._server = LoopbackServer(_Handler, self)
        self.port = self._server.port
        self.host = f"127.0.0.1:{self.port}"
        self.url = self._server.url

    def count(self, path_substring: str = "", method: str | None = None) -> int:
        with self._lock:
            return sum(n for key, n in self.requests.items()
                       if path_substring in key and (method is None or key.startswith(method + " ")))

    def stop(self) -> None:
        self._server.stop()
        self._client.close()


class _Handler(QuietHandler):
    @property
    def owner(self) -> SinglePostRegistry:
        return self.server.owner  # type: ignore[attr-defined, no-any-return]

    def _handle(self) -> None:
        owner = self.owner
        parts = urlsplit(self.path)
        with owner._lock:
            owner.requests[f"{self.command} {parts.path}"] += 1
        body = self.read_body()
        digest = parse_qs(parts.query).get("digest", [""])[0]
        if self.command == "POST" and parts.path.endswith("/blobs/uploads/") and digest and body:
            self._single_post(parts.path, digest, body)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Host"] = owner.host
        upstream = owner._client.request(self.command, owner.upstream + self.path, content=body, headers=headers)
        self._relay(upstream)

    def _single_post(self, path: str, digest: str, body: bytes) -> None:
        owner = self.owner
        started = owner._client.post(owner.upstream + path, headers={"Host": owner.host})
        if started.status_code != 202:
            self._relay(started)
            return
        location = httpx.URL(owner.upstream).join(started.headers["location"])
        finished = owner._client.put(location.copy_merge_params({"digest": digest}), content=body,
                                     headers={"Host": owner.host, "Content-Type": "application/octet-stream"})
        if finished.status_code == 201:
            with owner._lock:
                owner.single_posts += 1
        self._relay(finished)

    def _relay(self, upstream: httpx.Response) -> None:
        self.send_response(upstream.status_code)
        for key, value in upstream.headers.multi_items():
            if key.lower() not in _HOP - {"content-length"}:
                self.send_header(key, value)
        if "content-length" not in upstream.headers:
            self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        if self.command != "HEAD" and upstream.content:
            self.wfile.write(upstream.content)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
