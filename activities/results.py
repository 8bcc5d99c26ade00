"""How activities hand permanent failures back instead of raising them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ferry.errors import FerryError
from ferry.redact import redact

log = logging.getLogger("ferry.activities")


def permanent_failures_as_results(work: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
    """Run ``work``; a transient FerryError propagates (to be retried), a permanent one becomes
    ``{"error": message, "errorType": name}`` with secrets redacted."""
    try:
        return work()
    except FerryError as exc:
        if exc.transient:
            log.warning("%s: transient failure, will be retried: %s", what, redact(str(exc)))
            raise
        log.warning("%s failed: %s", what, redact(str(exc)))
        return {"error": redact(str(exc)), "errorType": type(exc).__name__}
