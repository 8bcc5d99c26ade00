"""Fetch non-distributable ("foreign") layers from the URLs their descriptors name.

A foreign layer (Docker's ``rootfs.foreign.diff.tar.gzip``, OCI's ``layer.nondistributable.*``)
usually is not stored by the registry that serves its manifest: its bytes live at the
descriptor's ``urls`` (Windows base layers on mcr.microsoft.com were the common case).
:func:`open_foreign_blob` tries those URLs in order over one small shared HTTP client that never
carries registry credentials, and verifies digest and size while streaming.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from urllib.parse import urlsplit

import httpx

from ferry.errors import FerryError, NotFoundError, TransientRegistryError, error_for_status
from ferry.oci.descriptor import Descriptor, verify_stream
from ferry.redact import redact
from ferry.registry.retry import RetryPolicy, parse_retry_after, with_retries

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """The shared client for foreign URLs: no auth, redirects followed, pooled across threads."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                follow_redirects=True,
                timeout=httpx.Timeout(120.0, connect=15.0),
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
                headers={"User-Agent": "ferry/0.1"},
            )
        return _client


def _open(url: str, what: str) -> httpx.Response:
    try:
        response = _http().send(_http().build_request("GET", url), stream=True)
    except httpx.TransportError as exc:
        raise TransientRegistryError(f"{what}: cannot reach {redact(url)}: {type(exc).__name__}") from exc
    if response.status_code == 200:
        return response
    status = response.status_code
    response.close()
    raise error_for_status(status, f"{what}: {redact(url)} answered {status}",
                           retry_after=parse_retry_after(response.headers.get("retry-after")))


@contextmanager
def open_foreign_blob(descriptor: Descriptor, *, retry: RetryPolicy | None = None,
                      missing_from: str = "") -> Iterator[Iterator[bytes]]:
    """Stream ``descriptor``'s bytes from the first of its URLs that answers 200.

    Transient faults are retried per URL; a URL that fails for good makes the next one tried.
    The stream raises IntegrityError (naming the digest and URL) on a size or digest mismatch.
    ``missing_from`` names where the blob was looked for first, for the final error message.
    """
    policy = retry or RetryPolicy()
    what = f"foreign layer {descriptor.digest}"
    failures: list[str] = []
    for url in descriptor.urls:
        if urlsplit(url).scheme not in ("http", "https"):
            failures.append(f"{redact(url)}: not an http(s) URL")
            continue
        try:
            response = with_retries(partial(_open, url, what), policy, what=f"GET {what}")
        except FerryError as exc:
            failures.append(redact(str(exc)).removeprefix(f"{what}: "))
            continue

        def read(response: httpx.Response = response, url: str = url) -> Iterator[bytes]:
            try:
                yield from response.iter_raw()
            except httpx.TransportError as exc:
                raise TransientRegistryError(
                    f"{what}: connection to {redact(url)} lost while reading: {type(exc).__name__}") from exc

        try:
            yield verify_stream(read(), descriptor, what=f"{what} from {redact(url)}")
        finally:
            response.close()
        return
    where = f" is not in {missing_from} and" if missing_from else ""
    tried = "; ".join(failures) if failures else "the descriptor lists no URLs"
    raise NotFoundError(f"{what} ({descriptor.size} bytes){where} could not be fetched from its URLs: {tried}")
