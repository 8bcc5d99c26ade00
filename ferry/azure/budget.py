"""One retry budget for every Azure SDK client Ferry builds.

The storage SDK's default is 3 retries starting at 15 s and tripling (a dead endpoint took 88 s
to fail an export here, minutes on a real network). Ferry gives every SDK call the same small
budget instead: 2 retries after 1 s and 2 s (with up to 1 s of jitter), 10 s to connect, 60 s
without a byte before a read fails. One layer of retries: Ferry's own callers retry on top of this
only at the Durable activity level (RetryOptions), never in a loop of their own.

May be imported by anything under ``ferry/azure`` and ``ferry/transfer``.
"""

from __future__ import annotations

from typing import Any

RETRIES = 2
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

#: Threads that may share one storage client. Clients are pooled per account for the whole
#: process (:mod:`ferry.azure.blob`), so every concurrent activity uses the same one: the host's
#: ``maxConcurrentActivityFunctions`` (8, the local runner's too), each with its blob workers (8 by
#: default) and an archive's staging threads (4). The SDK's own pool keeps 10 connections, so the
#: rest were opened and thrown away after each request ("Connection pool is full" warnings).
CONCURRENT_ACTIVITIES = 8
THREADS_PER_ACTIVITY = 8 + 4
POOL_SIZE = CONCURRENT_ACTIVITIES * THREADS_PER_ACTIVITY


def blob_options(**connection: Any) -> dict[str, Any]:
    """Keyword arguments for ``BlobServiceClient``/``ContainerClient``: the retry policy, timeouts,
    and a transport whose connection pool holds :data:`POOL_SIZE` connections. ``connection``:
    the transport's settings (``connection_verify``: a CA bundle), which a client given a transport
    no longer reads from its own keyword arguments."""
    from azure.storage.blob import ExponentialRetry

    return {"retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRIES,
                                             random_jitter_range=1),
            "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT,
            "transport": pooled_transport(**connection)}


def pooled_transport(size: int = POOL_SIZE, **connection: Any) -> Any:
    """An azure-core requests transport as the SDK builds it (no urllib3 retries: the policy above
    retries), with a pool of ``size`` connections per host."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    try:  # the SDK's adapter: larger send blocks for uploads
        from azure.core.pipeline.transport._requests_basic import BiggerBlockSizeHTTPAdapter as Adapter
    except ImportError:  # pragma: no cover - another azure-core
        from requests.adapters import HTTPAdapter as Adapter  # type: ignore[assignment]
    session = requests.Session()
    adapter = Adapter(max_retries=Retry(total=False, redirect=False, raise_on_status=False), pool_maxsize=size)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=True, connection_timeout=CONNECT_TIMEOUT,
                             read_timeout=READ_TIMEOUT, **connection)


def core_options() -> dict[str, Any]:
    """Keyword arguments for azure-core based clients (tables, Key Vault, ARM)."""
    return {"retry_total": RETRIES, "retry_backoff_factor": 1.0, "retry_backoff_max": 4,
            "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
