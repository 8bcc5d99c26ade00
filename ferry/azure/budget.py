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


def blob_options() -> dict[str, Any]:
    """Keyword arguments for ``BlobServiceClient``/``ContainerClient``: the retry policy and timeouts."""
    from azure.storage.blob import ExponentialRetry

    return {"retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRIES,
                                             random_jitter_range=1),
            "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}


def core_options() -> dict[str, Any]:
    """Keyword arguments for azure-core based clients (tables, Key Vault, ARM)."""
    return {"retry_total": RETRIES, "retry_backoff_factor": 1.0, "retry_backoff_max": 4,
            "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
