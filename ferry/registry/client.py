"""A Distribution API client for one registry: manifests, blobs, tags and referrers.

One :class:`RegistryClient` per registry holds one pooled ``httpx.Client`` and is safe to share
between threads. Every error is translated into :mod:`ferry.errors`; transient faults (connection
errors, 5xx, 429) are retried under one budget per operation (:mod:`ferry.registry.retry`).
Blob uploads, whose bodies are streams, are retried by :meth:`RegistryClient.push_blob` itself:
small blobs by reopening their source, chunked ones by resuming from the server's ``Range``; a
failed upload first checks whether the blob arrived after all, and cancels the sessions it leaves.

Everything is bounded: bodies are read as streams under caps (:mod:`ferry.registry.bodies`),
tag pagination stops at repeated pages, at ``max_tag_pages`` and at links to other hosts, and
every request has connect and read timeouts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ferry.errors import (
    FerryError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    TransientRegistryError,
    error_for_status,
)
from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor, verify_bytes, verify_stream
from ferry.oci.manifest import detect_media_type
from ferry.redact import redact
from ferry.reference import endpoint_for, is_loopback, is_valid_digest
from ferry.registry.auth import RegistryAuth
from ferry.registry.bodies import (
    MAX_ERROR_BYTES,
    MAX_JSON_BYTES,
    MAX_MANIFEST_BYTES,
    cap_stream,
    read_capped,
    read_prefix,
)
from ferry.registry.credentials import Credentials
from ferry.registry.retry import RetryBudget, RetryPolicy, operation, parse_retry_after, with_retries
from ferry.streams import rechunk

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: A stream of blob bytes; opening it again restarts from the first byte.
BlobOpener = Callable[[], AbstractContextManager[Iterator[bytes]]]


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest's exact bytes, its media type and its verified digest."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.raw),
                          raw={"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)})


@dataclass(frozen=True)
class Reply:
    """A registry's answer whose body was read within its cap; the connection is released."""

    status_code: int
    headers: httpx.Headers
    url: httpx.URL
    content: bytes = b""

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.content)
        except ValueError as exc:
            raise RegistryError(f"{what}: the registry answered with invalid JSON", status=self.status_code) from exc


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


class RegistryClient:
    """Talks the Distribution API to ``registry`` (a host[:port], or ``docker.io``).

    ``timeout`` bounds each read, write and wait for a pooled connection, ``connect_timeout``
    each connection; ``retry`` is the budget of every operation; ``max_tag_pages`` caps tag
    list pagination.
    """

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None = None,
        *,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        chunk_size: int = 8 * MiB,
        monolithic_limit: int = 128 * MiB,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_tag_pages: int = 1000,
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint_for(registry)
        self.plain_http = insecure or is_loopback(self.endpoint)
        self.base_url = f"{'http' if self.plain_http else 'https'}://{self.endpoint}"
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.monolithic_limit = monolithic_limit
        self.max_tag_pages = max_tag_pages
        self.auth = RegistryAuth(registry, credentials or Credentials.anonymous())
        self._referrers_api: bool | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self.auth,
            follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            # Layers are compressed already and manifests are small: identity keeps every cap a cap.
            headers={"User-Agent": "ferry/0.1", "Accept-Encoding": "identity"},
            event_hooks={"response": [_bound_unread_bodies]},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response is streamed: read it with read_capped or read_prefix, or close it."""
        try:
            return self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransientRegistryError(
                f"cannot reach registry {self.registry}: {type(exc).__name__}: {redact(str(exc))}") from exc

    def _request(self, method: str, url: str, *, what: str, ok: tuple[int, ...] = (200,),
                 missing_ok: bool = False, limit: int | None = MAX_JSON_BYTES, body_what: str | None = None,
                 once: bool = False, **kwargs: Any) -> Reply | None:
        """Send a replayable request as one operation; ``None`` for 404 when ``missing_ok``.

        The body is read up to ``limit`` bytes (BodyTooLargeError past it, naming ``body_what``);
        with ``limit=None`` it is not wanted and only drained a little. ``once``: never retried.
        """

        def attempt() -> Reply | None:
            response = self._send(self._http.build_request(method, url, **kwargs))
            if response.status_code in ok:
                if limit is None or method == "HEAD":
                    read_prefix(response)
                    content = b""
                else:
                    content = read_capped(response, limit, what=body_what or what)
                return Reply(response.status_code, response.headers, response.url, content)
            if missing_ok and response.status_code == 404:
                response.close()
                return None
            raise self._error(response, what)

        return attempt() if once else with_retries(attempt, self.retry, what=f"{method} {what}")

    def _error(self, response: httpx.Response, what: str) -> RegistryError:
        status = response.status_code
        body, cut = read_prefix(response, MAX_ERROR_BYTES)
        detail = _error_detail(body, cut)
        message = f"{what}: registry {self.registry} answered {status}" + (f" ({detail})" if detail else "")
        return error_for_status(status, redact(message),
                                retry_after=parse_retry_after(response.headers.get("retry-after")))

    def check_access(self) -> None:
        """Sign in as ``docker login`` does (``GET /v2/``), so rejected credentials fail fast.

        Raises :class:`AuthenticationError` when the registry or its token service rejects them.
        """
        self._request("GET", "/v2/", what="sign in", limit=None)

    # -- manifests --------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str, *, accept: str = mt.MANIFEST_ACCEPT) -> FetchedManifest:
        """Fetch a manifest by tag or digest, verifying its digest; raise NotFoundError if absent.

        A manifest over 4 MiB is refused (BodyTooLargeError) before more than that is read.
        """
        what = f"manifest {self.registry}/{repository}{_sep(reference)}{reference}"
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}", what=what,
                                 headers={"Accept": accept}, limit=MAX_MANIFEST_BYTES)
        assert response is not None
        raw = response.content
        media_type = detect_media_type(raw, response.headers.get("content-type"))
        if is_valid_digest(reference):
            verify_bytes(raw, reference, what=what)
            digest = reference
        else:
            header = response.headers.get("docker-content-digest")
            digest = Descriptor.for_bytes(media_type, raw).digest
            if header and is_valid_digest(header) and header.startswith("sha256:") and header != digest:
                raise IntegrityError(f"digest mismatch for {what}: registry says {header}, content is {digest}")
        return FetchedManifest(raw=raw, media_type=media_type, digest=digest)

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The descriptor of a manifest by tag or digest, or None when it does not exist."""
        response = self._request("HEAD", f"/v2/{repository}/manifests/{reference}", missing_ok=True,
                                 what=f"manifest {repository}{_sep(reference)}{reference}",
                                 headers={"Accept": mt.MANIFEST_ACCEPT})
        if response is None:
            return None
        digest = response.headers.get("docker-content-digest")
        if not digest or not is_valid_digest(digest):
            fetched = self.get_manifest(repository, reference)
            return fetched.descriptor
        media_type = response.headers.get("content-type", mt.OCI_MANIFEST).split(";")[0]
        size = int(response.headers.get("content-length") or 0)
        return Descriptor(media_type=media_type, digest=digest, size=size,
                          raw={"mediaType": media_type, "digest": digest, "size": size})

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Push ``raw`` verbatim under a tag or its digest; returns the digest the registry reports."""
        response = self._request(
            "PUT", f"/v2/{repository}/manifests/{reference}", ok=(201, 200, 202), content=raw, limit=None,
            what=f"push manifest {self.registry}/{repository}{_sep(reference)}{reference}",
            headers={"Content-Type": media_type})
        assert response is not None
        return response.headers.get("docker-content-digest") or Descriptor.for_bytes(media_type, raw).digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._request("DELETE", f"/v2/{repository}/manifests/{digest}", ok=(202, 200), limit=None,
                      what=f"delete manifest {repository}@{digest}")

    # -- tags and referrers -----------------------------------------------------------------
    def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """Every tag of ``repository``, following ``Link`` pagination; [] for an unknown repository.

        Pagination is bounded: a page read twice (a ``Link`` that loops), more than
        ``max_tag_pages`` pages, or a ``Link`` to another host than this registry's stops it
        with a RegistryError naming the repository. No page is read past 4 MiB.
        """
        what = f"tags of {self.registry}/{repository}"
        tags: list[str] = []
        url: str | None = self._absolute(f"/v2/{repository}/tags/list?n={page_size}")
        seen: set[str] = set()
        while url:
            if url in seen:
                raise RegistryError(f"{what}: the registry's Link header leads back to a page already read "
                                    f"({redact(url)}) after {len(seen)} pages; stopped")
            if len(seen) >= self.max_tag_pages:
                raise RegistryError(f"{what}: more than {self.max_tag_pages} pages of tags; stopped "
                                    "(raise max_tag_pages if the repository really has that many)")
            seen.add(url)
            page_what = f"tag list page {len(seen)} of {self.registry}/{repository}"
            response = self._request("GET", url, what=what, body_what=page_what, missing_ok=True)
            if response is None:
                return tags
            body = response.json(page_what)
            page = body.get("tags") if isinstance(body, dict) else None
            if page is not None and not (isinstance(page, list) and all(isinstance(t, str) for t in page)):
                raise RegistryError(f"{page_what}: 'tags' is not a list of strings")
            tags.extend(page or [])
            url = self._next_page(response, what)
        return tags

    def _next_page(self, response: Reply, what: str) -> str | None:
        """The absolute URL of the ``Link: <...>; rel="next"`` page, refused when on another host."""
        link = _next_link(response.headers.get_list("link"))
        if link is None:
            return None
        try:
            target = response.url.join(link)
        except httpx.InvalidURL as exc:
            raise RegistryError(f"{what}: the registry's Link header is not a URL: {redact(link)!r}") from exc
        base = httpx.URL(self.base_url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            where = target.netloc.decode("ascii", "replace") or "?"
            raise RegistryError(f"{what}: the registry's Link header points to {target.scheme}://{where}, "
                                f"not to {self.base_url}; not followed")
        return str(target)

    def list_referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """Referrers of ``digest`` through the OCI referrers API; None if the registry lacks the API."""
        what = f"referrers of {self.registry}/{repository}@{digest}"
        response = self._request("GET", f"/v2/{repository}/referrers/{digest}", missing_ok=True,
                                 what=what, ok=(200, 400, 405), headers={"Accept": mt.OCI_INDEX})
        if response is None or response.status_code != 200:
            self._referrers_api = False
            return None
        try:
            body = json.loads(response.content)
        except ValueError:
            self._referrers_api = False
            return None
        if not isinstance(body, dict) or not isinstance(body.get("manifests"), list):
            self._referrers_api = False
            return None
        self._referrers_api = True
        return [Descriptor.from_json(d, where="referrer") for d in body["manifests"]]

    def supports_referrers_api(self, repository: str) -> bool:
        """Whether the registry answers the OCI 1.1 referrers API (probed once, then cached)."""
        if self._referrers_api is None:
            self.list_referrers(repository, "sha256:" + "0" * 64)
        return bool(self._referrers_api)

    # -- blobs ------------------------------------------------------------------------------
    def has_blob(self, repository: str, digest: str, size: int | None = None, *, once: bool = False) -> bool:
        """Whether the registry holds ``digest`` in ``repository``.

        With ``size``, the blob counts as present only if the registry reports that many bytes:
        a ``Content-Length`` that disagrees is an IntegrityError, and a missing one means "not
        confirmed" (False: the caller uploads, and the registry keeps what it has).
        """
        what = f"blob {self.registry}/{repository}@{digest}"
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", missing_ok=True, what=what,
                                 once=once)
        if response is None:
            return False
        if size is None:
            return True
        length = response.headers.get("content-length", "")
        if not length.isdigit():
            log.info("%s: the registry answered HEAD without a Content-Length; uploading to be sure", what)
            return False
        if int(length) != size:
            raise IntegrityError(f"{what}: the registry holds {int(length)} bytes under this digest, "
                                 f"but its descriptor says {size}; not taken as present")
        return True

    @contextmanager
    def open_blob(self, repository: str, descriptor: Descriptor,
                  chunk_size: int | None = None) -> Iterator[Iterator[bytes]]:
        """Stream a blob; the iterator raises IntegrityError if bytes or length disagree with ``descriptor``.

        By default chunks are what the socket delivers (up to 64 KiB): re-chunking costs copies.
        """
        what = f"blob {self.registry}/{repository}@{descriptor.digest}"

        def open_response() -> httpx.Response:
            request = self._http.build_request("GET", f"/v2/{repository}/blobs/{descriptor.digest}")
            response = self._send(request)
            if response.status_code != 200:
                raise self._error(response, what)
            return response

        def read() -> Iterator[bytes]:
            # Translate here, inside the stream: the consumer is often another client's upload,
            # which would otherwise report this source's dropped connection as its own.
            try:
                yield from response.iter_raw(chunk_size)
            except httpx.TransportError as exc:
                raise TransientRegistryError(f"{what}: connection lost while reading: {exc}") from exc

        response = with_retries(open_response, self.retry, what=f"GET {what}")
        try:
            yield verify_stream(read(), descriptor, what=what)
        finally:
            response.close()

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount within this registry; False when the registry declined."""
        response = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/", ok=(201, 202), limit=None,
            params={"mount": digest, "from": from_repository},
            what=f"mount {digest} from {from_repository} into {repository}")
        assert response is not None
        if response.status_code == 201:
            return True
        location = response.headers.get("location")
        if location:  # the registry opened an upload instead; cancel it
            self._cancel_session(self._absolute(location))
        return False

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
            finally:
                self._cancel_upload(upload)

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
        if location:
            self._cancel_session(location)

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
        location = self._start_upload(upload)
        url = httpx.URL(location).copy_merge_params({"digest": descriptor.digest})
        with opener() as chunks:
            request = self._http.build_request(
                "PUT", url, content=chunks,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(descriptor.size)})
            response = self._send(request)
        upload.sent = descriptor.size
        if response.status_code not in (201, 204):
            raise self._error(response, f"upload {descriptor.digest} to {self.registry}/{upload.repository}")
        read_prefix(response)
        upload.location = None

    def _push_chunked(self, upload: _Upload, opener: BlobOpener, budget: RetryBudget) -> None:
        descriptor = upload.descriptor
        self._start_upload(upload)
        offset = 0
        with opener() as stream:
            for chunk in rechunk(stream, self.chunk_size):
                self._patch_with_resume(upload, chunk, offset, budget)
                offset += len(chunk)
        assert upload.location is not None
        url = httpx.URL(upload.location).copy_merge_params({"digest": descriptor.digest})
        self._request("PUT", str(url), ok=(201, 204), content=b"", limit=None,
                      what=f"commit upload {descriptor.digest} to {self.registry}/{upload.repository}")
        upload.location = None

    def _patch_with_resume(self, upload: _Upload, chunk: bytes, offset: int, budget: RetryBudget) -> None:
        """PATCH one chunk at ``offset``; on a transient fault ask the server how much it has and
        send the rest, drawing waits and attempts from the upload's budget."""
        descriptor = upload.descriptor
        start = offset
        while True:
            body = chunk[start - offset:]
            if not body:
                return
            assert upload.location is not None
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"{start}-{start + len(body) - 1}", "Content-Length": str(len(body))}
            try:
                # A one-shot iterator, not bytes: httpx keeps requests alive in reference cycles
                # until the GC runs, and with bytes every chunk sent so far would stay in memory.
                request = self._http.build_request("PATCH", upload.location, content=_once(body), headers=headers)
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


def _bound_unread_bodies(response: httpx.Response) -> None:
    """httpx reads the bodies of 401 challenges and redirects itself: cut them at 64 KiB."""
    if response.status_code == 401 or response.has_redirect_location:
        cap_stream(response, MAX_ERROR_BYTES)


_LINK_RE = re.compile(r"<([^>]*)>([^,<]*)")
_REL_NEXT_RE = re.compile(r""";\s*rel\s*=\s*"?([^";]*)"?""", re.IGNORECASE)


def _next_link(values: list[str]) -> str | None:
    """The target of the first ``rel="next"`` link among ``Link`` header values (RFC 8288)."""
    for value in values:
        for match in _LINK_RE.finditer(value):
            rel = _REL_NEXT_RE.search(match[2])
            if rel and "next" in rel[1].lower().split():
                return match[1].strip()
    return None


def _once(data: bytes) -> Iterator[bytes]:
    yield data


def _sep(reference: str) -> str:
    return "@" if is_valid_digest(reference) else ":"


def _error_detail(body: bytes, cut: bool) -> str:
    """The registry's error codes and messages from an error body (at most its first 64 KiB)."""
    try:
        parsed = json.loads(body) if not cut else None
    except ValueError:
        parsed = None
    if parsed is None:
        text = body.decode("utf-8", "replace").strip()[:200]
        return text + (" ..." if cut and text else "")
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors
                         if isinstance(e, dict))
    return ""
