"""An httpx transport that refuses hosts off the egress allow-list before connecting.

Every request a registry client sends passes here, including those the client did not choose
itself: a token service's realm, a ``Link`` to the next tag page, a redirect to blob storage. A
host the :class:`~ferry.egress.EgressPolicy` does not allow is refused before any socket opens.

May be imported by ``ferry/registry/client.py`` only.
"""

from __future__ import annotations

import httpx

from ferry.egress import EgressPolicy


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` that checks each request's host first."""

    def __init__(self, egress: EgressPolicy, what: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.egress = egress
        self.what = what

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.egress.check_host(request.url.netloc.decode("ascii"), f"{self.what} ({request.url.path})")
        return super().handle_request(request)
