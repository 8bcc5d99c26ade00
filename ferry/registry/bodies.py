"""Bounded reads of response bodies: nothing a registry or token service sends is read without a cap.

A registry may answer with any number of bytes. Every body Ferry keeps in memory is read as a
stream and refused as soon as it passes its cap, before the memory is spent:

* manifests and indexes: :data:`MAX_MANIFEST_BYTES` (4 MiB, the limit registries themselves apply);
* JSON documents (tag list pages, referrers, token responses): :data:`MAX_JSON_BYTES`;
* error bodies, 401 challenges and redirects: :data:`MAX_ERROR_BYTES`, silently cut there (only
  their first lines are ever shown).

Blobs are never read whole: they are streamed and verified (``ferry.oci.descriptor.verify_stream``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx

from ferry.errors import RegistryError, TransientRegistryError

KiB = 1024
MiB = 1024 * KiB
MAX_MANIFEST_BYTES = 4 * MiB
MAX_JSON_BYTES = 4 * MiB
MAX_ERROR_BYTES = 64 * KiB


class BodyTooLargeError(RegistryError):
    """A response body over its cap; permanent (asking again brings the same bytes)."""


def _size_text(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit // KiB} KiB"


def too_large(what: str, limit: int, announced: int | None = None, status: int | None = None) -> BodyTooLargeError:
    said = f" (it announced {announced} bytes)" if announced is not None else ""
    return BodyTooLargeError(f"{what} is larger than {_size_text(limit)}{said}; Ferry reads at most "
                             f"{_size_text(limit)} of it", status=status)


def announced_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def read_capped(response: httpx.Response, limit: int, *, what: str) -> bytes:
    """The whole (decoded) body of a streamed ``response``, or BodyTooLargeError past ``limit`` bytes.

    A ``Content-Length`` over the cap is refused before a byte is read. The response is closed.
    A connection lost while reading is a TransientRegistryError.
    """
    try:
        announced = announced_length(response)
        if announced is not None and announced > limit:
            raise too_large(what, limit, announced, response.status_code)
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise too_large(what, limit, status=response.status_code)
        except httpx.TransportError as exc:
            raise TransientRegistryError(f"{what}: connection lost while reading: {type(exc).__name__}") from exc
        except httpx.DecodingError as exc:
            raise RegistryError(f"{what}: the body could not be decoded ({exc})",
                                status=response.status_code) from exc
        return bytes(body)
    finally:
        response.close()


def read_prefix(response: httpx.Response, limit: int = MAX_ERROR_BYTES) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body and whether there was more; never raises; closes the response."""
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                return bytes(body[:limit]), True
    except (httpx.HTTPError, httpx.StreamError):
        pass
    finally:
        response.close()
    return bytes(body), False


class CappedStream(httpx.SyncByteStream):
    """A response stream that raises (``error``) or ends (``error=None``) after ``limit`` raw bytes.

    For bodies that httpx reads itself (401 challenges, redirects, token responses inside the auth
    flow), where the body cannot be read through :func:`read_capped`.
    """

    def __init__(self, inner: httpx.SyncByteStream, limit: int, error: RegistryError | None = None) -> None:
        self._inner = inner
        self._limit = limit
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            if seen + len(chunk) > self._limit:
                if self._error is not None:
                    raise self._error
                yield chunk[: self._limit - seen]
                return
            seen += len(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


def cap_stream(response: httpx.Response, limit: int, *, what: str | None = None) -> None:
    """Bound the body of ``response`` before something reads it whole (``response.read()``).

    With ``what``, a body over ``limit`` raises BodyTooLargeError naming it; without, the body is
    cut at ``limit``. A compressed body could expand past any raw cap, so an encoded body is
    refused (``what`` given) or dropped (not given): Ferry asks for identity encoding.
    """
    if not isinstance(response.stream, httpx.SyncByteStream):
        return
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        if what is not None:
            raise RegistryError(f"{what} came compressed ({encoding}) although Ferry asked for identity",
                                status=response.status_code)
        del response.headers["content-encoding"]
        response.stream = CappedStream(response.stream, 0)
        return
    error = too_large(what, limit, status=response.status_code) if what is not None else None
    announced = announced_length(response)
    if error is not None and announced is not None and announced > limit:
        raise too_large(what or "", limit, announced, response.status_code)
    response.stream = CappedStream(response.stream, limit, error)


def bound_unread_bodies(response: httpx.Response) -> None:
    """httpx reads the bodies of 401 challenges and redirects itself: cut them at 64 KiB."""
    if response.status_code == 401 or response.has_redirect_location:
        cap_stream(response, MAX_ERROR_BYTES)


_LINK_RE = re.compile(r"<([^>]*)>([^,<]*)")
_REL_NEXT_RE = re.compile(r""";\s*rel\s*=\s*"?([^";]*)"?""", re.IGNORECASE)


def next_link(values: list[str]) -> str | None:
    """The target of the first ``rel="next"`` link among ``Link`` header values (RFC 8288)."""
    for value in values:
        for match in _LINK_RE.finditer(value):
            rel = _REL_NEXT_RE.search(match[2])
            if rel and "next" in rel[1].lower().split():
                return match[1].strip()
    return None


_ERROR_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9 .,:;/@_()'+=-]")


def safe_text(text: str, limit: int = 100) -> str:
    """A remote host's free text made fit to show: printable ASCII only, at most ``limit`` characters."""
    return _UNSAFE_RE.sub("?", text)[:limit].strip()


def error_detail(body: bytes, cut: bool) -> str:
    """What of a registry's error body may be shown: its Distribution error codes, each with a
    sanitised message (printable ASCII, at most 100 characters). Anything else a remote host sends
    (HTML, free text, another service's body) is never echoed."""
    try:
        parsed = json.loads(body) if not cut else None
    except ValueError:
        parsed = None
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return ""
    shown = []
    for error in errors[:5]:
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, str) or not _ERROR_CODE_RE.fullmatch(code):
            continue
        message = error.get("message")
        text = safe_text(message) if isinstance(message, str) else ""
        shown.append(f"{code}: {text}" if text else code)
    return "; ".join(shown)
