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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ferry.egress import EgressPolicy
from ferry.errors import (
    IntegrityError,
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
    bound_unread_bodies,
    error_detail,
    next_link,
    read_capped,
    read_prefix,
)
from ferry.registry.credentials import Credentials
from ferry.registry.guard import SIGNED_REDIRECT, GuardedTransport, signed_redirect
from ferry.registry.ratelimit import RateLimitWatch
from ferry.registry.retry import RetryPolicy, parse_retry_after, with_retries
from ferry.registry.upload import BlobUploads, UploadSessions
from ferry.registry.wire import large_reads, tls_context

log = logging.getLogger(__name__)

MiB = 1024 * 1024


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


class RegistryClient(BlobUploads):
    """Talks the Distribution API to ``registry`` (a host[:port], or ``docker.io``).

    ``timeout`` bounds each read, write and wait for a pooled connection, ``connect_timeout``
    each connection; ``retry`` is the budget of every operation; ``max_tag_pages`` caps tag
    list pagination. With ``egress``, every request (token realms, links, redirects included) is
    refused before connecting unless its host is allowed. With ``sessions``, chunked uploads in
    progress are remembered there and resumed by the next client (another process) that uploads
    the same blob.
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
        egress: EgressPolicy | None = None,
        sessions: UploadSessions | None = None,
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint_for(registry)
        self.plain_http = insecure or is_loopback(self.endpoint)
        self.base_url = f"{'http' if self.plain_http else 'https'}://{self.endpoint}"
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.monolithic_limit = monolithic_limit
        self.max_tag_pages = max_tag_pages
        self.sessions = sessions
        self.auth = RegistryAuth(registry, credentials or Credentials.anonymous())
        self._referrers_api: bool | None = None
        self.rate_limit = RateLimitWatch()
        self._referrers_probe = threading.Lock()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        large_reads()
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self.auth,
            follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=limits,
            verify=tls_context(),
            transport=GuardedTransport(egress, f"registry {registry}", limits=limits, verify=tls_context())
            if egress else None,
            # Layers are compressed already and manifests are small: identity keeps every cap a cap.
            headers={"User-Agent": "ferry/0.1", "Accept-Encoding": "identity"},
            event_hooks={"response": [bound_unread_bodies]},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, request: httpx.Request, *, follow_redirects: bool = True) -> httpx.Response:
        """Send ``request``; the response is streamed: read it with read_capped or read_prefix, or close it.
        A request marked as a signed redirect (:func:`signed_redirect`) goes without credentials."""
        no_auth = {"auth": None} if request.extensions.get(SIGNED_REDIRECT) else {}
        try:
            return self._http.send(request, stream=True, follow_redirects=follow_redirects, **no_auth)
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
            self.rate_limit.answered(response.headers)
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
        detail = error_detail(body, cut)
        message = f"{what}: registry {self.registry} answered {status}" + (f" ({detail})" if detail else "")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = error_for_status(status, redact(message), retry_after=retry_after)
        self.rate_limit.asked(error, retry_after)
        return error

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
        link = next_link(response.headers.get_list("link"))
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
        """Referrers of ``digest`` through the OCI referrers API; None if the registry lacks the API.

        A registry that answered once without the API (404, 400, 405, not an index) is not asked
        again by this client: the first question is asked alone, the others wait for its answer.
        """
        if self._referrers_api is None:
            with self._referrers_probe:
                if self._referrers_api is None:
                    return self._ask_referrers(repository, digest)
        return self._ask_referrers(repository, digest) if self._referrers_api else None

    def _ask_referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
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
            response = self._send(request, follow_redirects=False)
            if response.is_redirect:  # registries serve blobs from their storage (a signed URL)
                response = self._send(signed_redirect(response, what), follow_redirects=True)
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

def _sep(reference: str) -> str:
    return "@" if is_valid_digest(reference) else ":"
