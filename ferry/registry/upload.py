"""Blob uploads of the registry client: monolithic or chunked, resumed, recovered, cancelled.

:class:`BlobUploads` is mixed into :class:`ferry.registry.client.RegistryClient`, whose plumbing
(``_request``, ``_send``, ``has_blob``, the pooled client and the retry policy) it uses. Blobs up to
``monolithic_limit`` go in one PUT; larger ones in PATCH chunks that resume from the offset the
server reports. One retry budget covers a whole upload; after any failure the blob is looked up
before anything else (a commit whose answer was lost counts as done), and every session given up
is cancelled with a DELETE.

May be imported by ``ferry/registry/client.py`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httpx

from ferry.errors import FerryError, IntegrityError, NotFoundError, RegistryError, TransientRegistryError
from ferry.oci.descriptor import Descriptor
from ferry.redact import redact
from ferry.registry.bodies import read_prefix
from ferry.registry.retry import RetryBudget, RetryPolicy, operation
from ferry.streams import Block, blocks

log = logging.getLogger(__name__)

#: Blobs up to this size are read into memory and sent in one ``POST ?digest=`` to a registry that
#: takes that form; larger ones go POST, then PUT.
SINGLE_POST_LIMIT = 1024 * 1024
#: While it is not known whether the registry takes it, only blobs this small probe it: a registry
#: without it answers 202 without reading the body (then the session it opened gets a PUT), and a
#: server may close a connection whose unread body is larger than this (Go reads 256 KiB of it).
PROBE_LIMIT = 64 * 1024

#: A stream of blob bytes; opening it again restarts from the first byte.
BlobOpener = Callable[[], AbstractContextManager[Iterator[bytes]]]


@dataclass
class _Upload:
    """One blob upload in progress: the open session (None when there is none), the bytes sent by
    the current attempt, and the furthest offset any attempt got the registry to accept."""

    repository: str
    descriptor: Descriptor
    location: str | None = None
    sent: int = 0
    furthest: int = 0


class _StartOver(TransientRegistryError):
    """The upload session cannot be resumed (the registry dropped it, or holds less than was sent):
    the upload restarts from the first byte, without a further wait (the wait was already taken)."""



class UploadSessions(Protocol):
    """Where chunked uploads in progress are remembered (by registry, repository and digest), so
    that another process (after a kill or a host restart) resumes from the offset the registry
    reports instead of sending everything again."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, location: str) -> None: ...

    def drop(self, key: str) -> None: ...


class BlobUploads:
    """The upload half of a registry client (see the module docstring)."""

    sessions: UploadSessions | None = None
    registry: str
    base_url: str
    retry: RetryPolicy
    chunk_size: int
    monolithic_limit: int
    _http: httpx.Client
    #: Whether the registry takes a monolithic upload in one ``POST ?digest=`` (None: not known yet).
    _single_post: bool | None = None

    def _request(self, method: str, url: str, *, what: str, ok: tuple[int, ...] = (200,),
                 missing_ok: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _send(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def _error(self, response: httpx.Response, what: str) -> RegistryError:
        raise NotImplementedError

    def has_blob(self, repository: str, digest: str, size: int | None = None, *, once: bool = False) -> bool:
        raise NotImplementedError

    def push_blob(self, repository: str, descriptor: Descriptor, opener: BlobOpener) -> int:
        """Upload a blob from ``opener`` and return the bytes sent.

        Blobs up to ``monolithic_limit`` go in one PUT; larger ones go in PATCH chunks of
        ``chunk_size``, and a failed chunk resumes from the offset the server reports. One retry
        budget covers the whole upload. After any failure the blob is looked up (HEAD, with its
        size checked) before anything else: a commit whose answer was lost counts as done. Every
        session given up (before a restart, or when the upload fails for good) is cancelled with
        a DELETE. The registry verifies the digest before committing, so a failed or mismatched
        upload leaves nothing behind.
        """
        upload = _Upload(repository, descriptor)
        what = f"upload {descriptor.digest} to {self.registry}/{repository}"
        with operation(self.retry, what) as budget:
            try:
                return self._upload_until_done(upload, opener, budget)
            except FerryError:
                self._cancel_upload(upload)
                raise
            # A process interrupted or killed here keeps its session: the next one resumes it.

    def _upload_until_done(self, upload: _Upload, opener: BlobOpener, budget: RetryBudget) -> int:
        descriptor = upload.descriptor
        while True:
            upload.sent = 0
            try:
                if descriptor.size <= self.monolithic_limit:
                    self._push_monolithic(upload, opener)
                else:
                    self._push_chunked(upload, opener, budget)
                return upload.sent
            except FerryError as exc:
                error = exc
            if self._blob_arrived(upload):
                log.info("upload of %s to %s/%s failed (%s), but the registry has the blob: done",
                         descriptor.digest, self.registry, upload.repository, error)
                upload.location = None  # committed: there is no session left to cancel
                return upload.sent
            self._cancel_upload(upload)
            if not isinstance(error, _StartOver):
                budget.backoff(error)

    def _blob_arrived(self, upload: _Upload) -> bool:
        """After a failed upload: whether the blob is there with the right size (a lost commit answer)."""
        try:
            return self.has_blob(upload.repository, upload.descriptor.digest, size=upload.descriptor.size,
                                 once=True)
        except IntegrityError:
            raise
        except FerryError as exc:
            log.info("could not check for %s after a failed upload: %s", upload.descriptor.digest, exc)
            return False

    def _cancel_upload(self, upload: _Upload) -> None:
        location, upload.location = upload.location, None
        if self.sessions is not None:
            self.sessions.drop(self._session_key(upload))
        if location:
            self._cancel_session(location)

    def _session_key(self, upload: _Upload) -> str:
        return f"{self.registry}/{upload.repository}@{upload.descriptor.digest}"

    def _remember(self, upload: _Upload) -> None:
        if self.sessions is not None and upload.location:
            self.sessions.put(self._session_key(upload), upload.location)

    def _resume_or_start(self, upload: _Upload) -> int:
        """The offset to send from: a remembered session the registry still holds, else a new one (0)."""
        key = self._session_key(upload)
        saved = self.sessions.get(key) if self.sessions is not None else None
        if saved:
            try:
                location, offset = self._upload_status(saved)
                if 0 < offset <= upload.descriptor.size:
                    upload.location, upload.furthest = location, offset
                    log.info("resuming the upload of %s at byte %d of %d", upload.descriptor.digest, offset,
                             upload.descriptor.size)
                    return offset
            except FerryError as exc:
                log.info("the remembered upload of %s cannot be resumed: %s", upload.descriptor.digest, exc)
            if self.sessions is not None:
                self.sessions.drop(key)
        self._start_upload(upload)
        self._remember(upload)
        return 0

    def _cancel_session(self, location: str) -> None:
        """Best effort, one bounded DELETE of an upload session that will not be finished."""
        try:
            request = self._http.build_request("DELETE", location, timeout=httpx.Timeout(10.0))
            read_prefix(self._send(request))
        except FerryError as exc:  # the registry expires abandoned sessions itself eventually
            log.info("could not cancel upload session %s: %s", redact(location), exc)

    def _start_upload(self, upload: _Upload) -> str:
        response = self._request("POST", f"/v2/{upload.repository}/blobs/uploads/", ok=(202,), limit=None,
                                 what=f"start upload to {self.registry}/{upload.repository}")
        assert response is not None
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"registry {self.registry} started an upload without a Location")
        upload.location = self._absolute(location)
        return upload.location

    def _absolute(self, location: str) -> str:
        return str(httpx.URL(self.base_url).join(location))

    def _push_monolithic(self, upload: _Upload, opener: BlobOpener) -> None:
        descriptor = upload.descriptor
        single_post_limit = {True: SINGLE_POST_LIMIT, None: PROBE_LIMIT}.get(self._single_post, -1)
        if descriptor.size <= single_post_limit:
            with opener() as chunks:
                body = b"".join(chunks)
            if self._post_monolithic(upload, body):
                return
            content: bytes | Iterator[bytes] | None = body
        else:
            self._start_upload(upload)
            content = None
        url = httpx.URL(upload.location or "").copy_merge_params({"digest": descriptor.digest})
        with opener() if content is None else nullcontext(content) as chunks:
            request = self._http.build_request(
                "PUT", url, content=chunks,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(descriptor.size)})
            response = self._send(request)
        upload.sent = descriptor.size
        if response.status_code not in (201, 204):
            raise self._error(response, f"upload {descriptor.digest} to {self.registry}/{upload.repository}")
        read_prefix(response)
        upload.location = None

    def _post_monolithic(self, upload: _Upload, body: bytes) -> bool:
        """The single-request upload (``POST ?digest=`` with the bytes; 201): True when done. A
        registry without it opens a session instead (202: ``upload.location``, where the caller PUTs
        the bytes) or refuses the form (then a session is started): either is remembered, so this
        client asks with a body only while the answer is unknown and small blobs make the probes.
        The body is bytes (at most ``SINGLE_POST_LIMIT``), so an auth challenge can replay it."""
        descriptor = upload.descriptor
        what = f"upload {descriptor.digest} to {self.registry}/{upload.repository}"
        request = self._http.build_request(
            "POST", f"/v2/{upload.repository}/blobs/uploads/", params={"digest": descriptor.digest}, content=body,
            headers={"Content-Type": "application/octet-stream"})
        response = self._send(request)
        if response.status_code == 201:
            read_prefix(response)
            self._single_post, upload.sent, upload.location = True, descriptor.size, None
            return True
        if response.status_code == 202 and (location := response.headers.get("location")):
            read_prefix(response)
            self._single_post, upload.location = False, self._absolute(location)
            return False
        if response.status_code in (400, 405, 415, 501):
            read_prefix(response)
            self._single_post = False
            self._start_upload(upload)
            return False
        raise self._error(response, what)

    def _push_chunked(self, upload: _Upload, opener: BlobOpener, budget: RetryBudget) -> None:
        descriptor = upload.descriptor
        resume_at = self._resume_or_start(upload)
        offset = 0
        with opener() as stream:  # read (and verified) from the first byte; sent from ``resume_at``
            for chunk in blocks(stream, self.chunk_size):  # views of what was read: no copy
                if offset + len(chunk) > resume_at:
                    skip = max(0, resume_at - offset)
                    self._patch_with_resume(upload, chunk.tail(skip), offset + skip, budget)
                    self._remember(upload)
                offset += len(chunk)
        assert upload.location is not None
        url = httpx.URL(upload.location).copy_merge_params({"digest": descriptor.digest})
        self._request("PUT", str(url), ok=(201, 204), content=b"", limit=None,
                      what=f"commit upload {descriptor.digest} to {self.registry}/{upload.repository}")
        upload.location = None
        if self.sessions is not None:
            self.sessions.drop(self._session_key(upload))

    def _patch_with_resume(self, upload: _Upload, parts: list[memoryview], offset: int, budget: RetryBudget) -> None:
        """PATCH one chunk (``parts``) at ``offset``; on a transient fault ask the server how much it
        has and send the rest, drawing waits and attempts from the upload's budget."""
        descriptor = upload.descriptor
        chunk = Block(parts)
        start = offset
        while True:
            body = Block(chunk.tail(start - offset))
            if not body:
                return
            assert upload.location is not None
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"{start}-{start + len(body) - 1}", "Content-Length": str(len(body))}
            try:
                # An iterator of the views read, not bytes: no copy, and httpx keeps requests alive in
                # reference cycles until the GC runs (with bytes every chunk sent would stay in memory).
                content = cast(Iterator[bytes], iter(body.parts))  # bytes-like views
                request = self._http.build_request("PATCH", upload.location, content=content, headers=headers)
                response = self._send(request)
                if response.status_code == 202:
                    read_prefix(response)
                    upload.sent += len(body)
                    upload.location = self._absolute(response.headers.get("location") or upload.location)
                    if start + len(body) > upload.furthest:
                        # Only new ground is progress: a restarted upload re-sending what an
                        # abandoned session held must not refill the budget (it would never end).
                        upload.furthest = start + len(body)
                        budget.progressed()
                    return
                error = self._error(response, f"upload chunk of {descriptor.digest}")
            except TransientRegistryError as exc:
                error = exc
            budget.backoff(error)  # raises when permanent or when the budget is spent
            try:
                upload.location, start = self._upload_status(upload.location)
            except NotFoundError as exc:
                # distribution invalidates (and cancels) a session whose PATCH died mid-body:
                # the upload must start over from a fresh stream.
                raise _StartOver(
                    f"upload of {descriptor.digest} to {self.registry}: the registry dropped the interrupted "
                    f"upload session ({exc}); starting over") from exc
            if not offset <= start <= offset + len(chunk):
                # The server holds less than the chunks already sent (or more than this one):
                # those bytes are gone from memory, so the upload starts over from a fresh stream.
                raise _StartOver(
                    f"upload of {descriptor.digest} to {self.registry}: the registry reports offset {start}, "
                    f"outside the chunk {offset}-{offset + len(chunk)} in hand; starting over")

    def _upload_status(self, location: str) -> tuple[str, int]:
        """Where an interrupted upload stands: (its location, the next offset the server expects)."""
        response = self._request("GET", location, ok=(204, 200), what="upload status", limit=None)
        assert response is not None
        received = response.headers.get("range", "0-0")
        end = int(received.rsplit("-", 1)[-1]) if "-" in received else -1
        next_offset = 0 if received in ("", "0-0") and end <= 0 else end + 1
        return self._absolute(response.headers.get("location") or location), next_offset





