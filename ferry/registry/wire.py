"""What every registry client's HTTP connections share: one TLS context per process, and socket
reads of up to 256 KiB.

* Building a TLS context (loading the CA bundle) costs about 25 ms of CPU; ``httpx`` builds one
  per client unless given one, and a run has a client per registry (more in the app).
* ``httpcore`` reads a response 64 KiB at a time; a blob's bytes then pass its HTTP/1.1 layers once
  per 64 KiB. Larger reads pass them fewer times (receiving and hashing 200 MiB: 0.29-0.34 CPU-s
  with 64 KiB reads, 0.20-0.29 with 256 KiB or 1 MiB, against 0.12 for hashing alone; the spread is
  the shared machine). 256 KiB keeps most of that and little memory: with 1 MiB, eight parallel
  blobs took a run's peak RSS from 42 to 81 MB. A read returns what the socket holds, so small
  answers are no slower.

May be imported by ``ferry/registry/client.py`` only.
"""

from __future__ import annotations

import functools
import ssl

import httpx

#: The most a connection asks its socket for at once.
READ_BYTES = 256 * 1024


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS context for registries: httpx's default (certifi's CAs, SSL_CERT_FILE)."""
    return httpx.create_ssl_context()


@functools.cache
def large_reads() -> None:
    """Let ``httpcore``'s HTTP/1.1 connections read up to :data:`READ_BYTES` at a time (once)."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # another httpcore layout: keep its default
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", READ_BYTES) < READ_BYTES:
        HTTP11Connection.READ_NUM_BYTES = READ_BYTES
