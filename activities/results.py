"""What every activity shares: how permanent failures come back, and the job environment.

An activity raises only for transient faults (so ``call_activity_with_retry`` retries them); a
permanent failure comes back as ``{"error": message, "errorType": name}`` with secrets redacted,
and an unexpected exception as a short message without a traceback (the traceback is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ferry.azure.claims import claim_store
from ferry.egress import EgressPolicy
from ferry.errors import FerryError
from ferry.jobs.endpoints import JobEnvironment
from ferry.redact import redact
from ferry.settings import Settings

log = logging.getLogger("ferry.activities")


def job_environment() -> JobEnvironment:
    """The app's settings and claim store, read now (a worker may be reconfigured between calls)."""
    settings = Settings.from_env()
    return JobEnvironment(settings=settings, claims=claim_store(settings), egress=EgressPolicy.from_settings(settings))


def permanent_failures_as_results(work: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
    """Run ``work``; a transient FerryError propagates (to be retried), a permanent one becomes
    ``{"error": message, "errorType": name}``."""
    try:
        return work()
    except FerryError as exc:
        if exc.transient:
            log.warning("%s: transient failure, will be retried: %s", what, redact(str(exc)))
            raise
        log.warning("%s failed: %s", what, redact(str(exc)))
        return {"error": redact(str(exc)), "errorType": type(exc).__name__}
    except Exception as exc:  # a bug: logged with its traceback, reported without one
        log.exception("%s failed unexpectedly", what)
        return {"error": f"{what} failed unexpectedly ({type(exc).__name__}); see the function app's logs",
                "errorType": "InternalError"}
