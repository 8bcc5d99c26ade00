"""An in-memory, read-only Distribution API server for faults a real registry cannot produce.

Serves (GET and HEAD): ``/v2/``, ``/v2/<name>/manifests/<tag|digest>`` (Content-Type,
Docker-Content-Digest), ``/v2/<name>/blobs/<digest>`` (with single ``Range: bytes=a-b``
support, 206), ``/v2/<name>/tags/list`` (``n``/``last`` pagination with a ``Link`` header) and
``/v2/<name>/referrers/<digest>`` (OCI 1.1 referrers API; disable with
``referrers_api=False`` to get 404 as from distribution 2.8). Writes answer 405 UNSUPPORTED.

Faults: `fail_next` answers matching requests with a given status a number of times;
`truncate_blob` announces the full Content-Length, sends only the first bytes and closes the
connection. Blobs are global (any repository serves any blob); the digest passed to
`add_blob`/`add_manifest` overrides the true one, so served bytes can mismatch their digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ._http import LoopbackServer, QuietHandler

__all__ = ["FakeRegistry", "Fault"]

_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|referrers)/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Fault:
    """Answer requests whose path contains `path_substring` (and `method`, if set) with `status`."""

    path_substring: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    method: str | None = None


@dataclass
class _Manifest:
    media_type: str
    raw: bytes


class FakeRegistry:
    """Starts serving on construction at `url` / `host`; call `stop()` when done.

    `requests` counts ``"METHOD /path"`` (query stripped); `count()` sums over substrings.
    """

    def __init__(self, *, referrers_api: bool = True) -> None:
        self.referrers_api = referrers_api
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], _Manifest] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.requests: Counter[str] = Counter()
        self._faults: list[Fault] = []
        #: Headers added to every answer that is not an injected fault (e.g. RateLimit-Remaining).
        self.extra_headers: dict[str, str] = {}
        self._truncations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        self.url = self._server.url
        self.host = f"127.0.0.1:{self._server.port}"

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        self._server.stop()

    # --- content ---

    def add_blob(self, data: bytes, digest: str | None = None) -> str:
        """Serve `data` under `digest` (default: its true sha256). Returns the digest."""
        digest = digest or _digest(data)
        with self._lock:
            self.blobs[digest] = data
        return digest

    def add_manifest(
        self,
        repo: str,
        media_type: str,
        raw: bytes,
        tags: Iterable[str] = (),
        digest: str | None = None,
    ) -> str:
        """Serve `raw` in `repo` by `digest` (default: true sha256) and by each tag. Returns the digest."""
        digest = digest or _digest(raw)
        with self._lock:
            self.manifests[(repo, digest)] = _Manifest(media_type, raw)
            for tag in tags:
                self.tags[(repo, tag)] = digest
        return digest

    def add_content(self, repo: str, manifest: Any, tags: Iterable[str] = ()) -> str:
        """Serve a `tests.harness.content.Manifest` with all its blobs and children."""
        for blob in manifest.all_blobs():
            self.add_blob(blob.data)
        for m in manifest.all_manifests():
            self.add_manifest(repo, m.media_type, m.raw, tags if m is manifest else ())
        return str(manifest.digest)

    # --- faults ---

    def fail_next(
        self,
        path_substring: str,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        *,
        body: bytes = b"",
        method: str | None = None,
    ) -> None:
        """The next `times` matching requests get `status` with `headers` (e.g. Retry-After)."""
        with self._lock:
            self._faults.append(Fault(path_substring, status, times, dict(headers or {}), body, method))

    def truncate_blob(self, digest: str, n_bytes: int) -> None:
        """From now on, GETs of this blob send full Content-Length but close after `n_bytes`."""
        with self._lock:
            self._truncations[digest] = n_bytes

    def clear_faults(self) -> None:
        """Forget pending failures and truncations."""
        with self._lock:
            self._faults.clear()
            self._truncations.clear()

    def count(self, path_substring: str = "", method: str | None = None) -> int:
        """Requests so far whose ``"METHOD /path"`` key contains `path_substring` (and `method`)."""
        with self._lock:
            return sum(
                n for key, n in self.requests.items()
                if path_substring in key and (method is None or key.startswith(method + " "))
            )

    # --- used by the handler ---

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_substring in path and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _resolve(self, repo: str, ref: str) -> tuple[str, _Manifest] | None:
        with self._lock:
            digest = ref if ":" in ref else self.tags.get((repo, ref))
            if digest is None or (repo, digest) not in self.manifests:
                return None
            return digest, self.manifests[(repo, digest)]

    def _referrers(self, repo: str, subject: str) -> dict[str, Any]:
        entries = []
        with self._lock:
            items = [(d, m) for (r, d), m in self.manifests.items() if r == repo]
        for digest, m in items:
            try:
                doc = json.loads(m.raw)
            except ValueError:
                continue
            if not isinstance(doc, dict) or (doc.get("subject") or {}).get("digest") != subject:
                continue
            entry: dict[str, Any] = {"mediaType": m.media_type, "digest": digest, "size": len(m.raw)}
            artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact_type:
                entry["artifactType"] = artifact_type
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            entries.append(entry)
        return {"schemaVersion": 2, "mediaType": _OCI_INDEX, "manifests": entries}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


class _Handler(QuietHandler):
    server_version = "ferry-harness-fake-registry"

    @property
    def owner(self) -> FakeRegistry:
        return self.server.owner  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _unsupported(self) -> None:
        self.read_body()
        with self.owner._lock:
            self.owner.requests[f"{self.command} {urlsplit(self.path).path}"] += 1
        self.reply_json(405, _error("UNSUPPORTED", "this fake registry is read-only"))

    do_PUT = do_POST = do_PATCH = do_DELETE = _unsupported

    def _serve(self, head: bool) -> None:
        url = urlsplit(self.path)
        path = url.path
        with self.owner._lock:
            self.owner.requests[f"{self.command} {path}"] += 1
        fault = self.owner._take_fault(self.command, path)
        if fault is not None:
            body = fault.body or json.dumps(_error("FAULT", f"injected {fault.status}")).encode()
            self.reply(fault.status, body, headers=fault.headers, head=head)
            return
        api = {"Docker-Distribution-API-Version": "registry/2.0", **self.owner.extra_headers}
        if path in ("/v2", "/v2/"):
            self.reply_json(200, {}, headers=api)
            return
        tags = _TAGS.match(path)
        if tags:
            self._tags(tags["name"], parse_qs(url.query), api)
            return
        route = _ROUTE.match(path)
        if route is None:
            self.reply_json(404, _error("NOT_FOUND", path), headers=api)
            return
        name, kind, ref = route["name"], route["kind"], route["ref"]
        if kind == "manifests":
            found = self.owner._resolve(name, ref)
            if found is None:
                self.reply(404, json.dumps(_error("MANIFEST_UNKNOWN", ref)).encode(), headers=api, head=head)
                return
            digest, manifest = found
            self.reply(200, manifest.raw, content_type=manifest.media_type,
                       headers={**api, "Docker-Content-Digest": digest}, head=head)
        elif kind == "blobs":
            self._blob(ref, head, api)
        elif not self.owner.referrers_api:
            self.reply_json(404, _error("NOT_FOUND", "no referrers API"), headers=api)
        else:
            body = json.dumps(self.owner._referrers(name, ref)).encode()
            self.reply(200, body, content_type=_OCI_INDEX, headers=api, head=head)

    def _tags(self, name: str, query: dict[str, list[str]], api: dict[str, str]) -> None:
        with self.owner._lock:
            all_tags = sorted(t for (r, t) in self.owner.tags if r == name)
        if not all_tags:
            self.reply_json(404, _error("NAME_UNKNOWN", name), headers=api)
            return
        last = query.get("last", [""])[-1]
        page = [t for t in all_tags if t > last] if last else all_tags
        headers = dict(api)
        if "n" in query:
            n = int(query["n"][-1])
            if len(page) > n:
                page = page[:n]
                headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={quote(page[-1])}>; rel="next"'
        self.reply_json(200, {"name": name, "tags": page}, headers=headers)

    def _blob(self, digest: str, head: bool, api: dict[str, str]) -> None:
        with self.owner._lock:
            data = self.owner.blobs.get(digest)
            cut = self.owner._truncations.get(digest)
        if data is None:
            self.reply(404, json.dumps(_error("BLOB_UNKNOWN", digest)).encode(), headers=api, head=head)
            return
        headers = {**api, "Docker-Content-Digest": digest, "Accept-Ranges": "bytes"}
        status = 200
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            end = int(ranged[2]) if ranged[2] else len(data) - 1
            if start >= len(data) or end < start:
                self.reply(416, b"", headers={**api, "Content-Range": f"bytes */{len(data)}"}, head=head)
                return
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        if cut is None or head:
            self.reply(status, data, content_type="application/octet-stream", headers=headers, head=head)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
