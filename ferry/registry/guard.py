"""An httpx transport that refuses hosts off the egress allow-list before connecting.

Every request a registry client sends passes here, including those the client did not choose
itself: a token service's realm, a ``Link`` to the next tag page, a redirect. A host the
:class:`~ferry.egress.EgressPolicy` does not allow is refused before any socket opens.

One exception, narrow on purpose: a registry serving a blob GET from its storage answers with a
redirect to a signed URL on another host (ACR: ``*.blob.core.windows.net``). Such a request
(:func:`signed_redirect`) carries no credential and a signature of its own; it may go to a public
DNS name not on the list, never to an IP address or ``localhost``.

May be imported by ``ferry/registry/client.py`` only.
"""

from __future__ import annotations

import httpx

from ferry.egress import EgressDeniedError, EgressPolicy, is_special_address, split_host

#: The request extension that marks a blob GET's redirect (sent without credentials).
SIGNED_REDIRECT = "ferry_signed_redirect"


def signed_redirect(response: httpx.Response, what: str) -> httpx.Request:
    """The GET a blob redirect points at, marked to go without credentials; the response is closed."""
    location = response.headers.get("location") or ""
    response.close()
    origin = response.request.url
    url = origin.join(location)
    if url.scheme not in ("https", "http") or url.userinfo or not url.host:
        raise EgressDeniedError(f"{what}: the registry redirected to {url.scheme}://{url.host}, not a plain URL")
    if (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port):
        return httpx.Request("GET", url)  # the registry itself: as any request to it
    return httpx.Request("GET", url, extensions={SIGNED_REDIRECT: True})


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` that checks each request's host first."""

    def __init__(self, egress: EgressPolicy, what: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.egress = egress
        self.what = what

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        authority = request.url.netloc.decode("ascii")
        host, _ = split_host(authority)
        signed = request.extensions.get(SIGNED_REDIRECT) and "authorization" not in request.headers
        if not (signed and not is_special_address(host)):
            self.egress.check_host(authority, f"{self.what} ({request.url.path})")
        return super().handle_request(request)
