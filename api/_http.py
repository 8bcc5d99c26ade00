"""What every HTTP route shares: JSON bodies and answers, ARM-shaped errors, the stores.

Errors answer in ARM's shape ``{"error": {"code", "message"}}``: 400 names the bad field, 404 the
unknown resource, 409 a conflict, 403 a denial, 503 a transient fault. Messages pass through
:func:`ferry.redact.redact`; an unexpected exception is logged and answered without its text.

May be imported by the other modules of ``api/`` only.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from ferry.azure.claims import claim_store
from ferry.errors import AccessDeniedError, ConflictError, FerryError, NotFoundError, UsageError
from ferry.redact import redact
from ferry.settings import Settings
from ferry.transfer.store import ResourceStore

log = logging.getLogger("ferry.api")
_T = TypeVar("_T")
#: The largest request body read, in bytes: ACR bodies are a few KiB.
MAX_BODY = 1024 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def error_response_for(status: int, code: str, message: str) -> func.HttpResponse:
    return json_response({"error": {"code": code, "message": redact(message)}}, status)


def error_response(exc: Exception) -> func.HttpResponse:
    """The ARM error answer for ``exc``."""
    if isinstance(exc, UsageError):
        return error_response_for(400, "BadRequest", str(exc))
    if isinstance(exc, NotFoundError):
        return error_response_for(404, "ResourceNotFound", str(exc))
    if isinstance(exc, ConflictError):
        return error_response_for(409, "Conflict", str(exc))
    if isinstance(exc, AccessDeniedError):
        return error_response_for(403, "AuthorizationFailed", str(exc))
    if isinstance(exc, FerryError):
        log.error("request failed: %s", redact(str(exc)))
        if exc.transient:
            return error_response_for(503, "ServiceUnavailable", str(exc))
        return error_response_for(500, "InternalServerError", str(exc))
    log.exception("unexpected error: %s", type(exc).__name__)
    return error_response_for(500, "InternalServerError", "internal error; see the function app's logs")


def sync_errors(fn: Callable[..., func.HttpResponse]) -> Callable[..., func.HttpResponse]:
    """Answer any exception of a synchronous route as :func:`error_response` does."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            return error_response(exc)

    return wrapper


def async_errors(fn: Callable[..., Awaitable[func.HttpResponse]]) -> Callable[..., Awaitable[func.HttpResponse]]:
    """Answer any exception of an async route as :func:`error_response` does."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            return error_response(exc)

    return wrapper


def request_body(req: func.HttpRequest) -> Any:
    """The request's JSON; UsageError when it is not JSON or is larger than :data:`MAX_BODY`."""
    raw = req.get_body() or b"null"
    if len(raw) > MAX_BODY:
        raise UsageError(f"body: larger than {MAX_BODY} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError("body: not valid JSON") from exc


def route_name(req: func.HttpRequest) -> str:
    return req.route_params.get("name", "")


def settings() -> Settings:
    """The app settings, read per request."""
    return Settings.from_env()


def resource_store(current: Settings | None = None) -> ResourceStore:
    """The shared store of the app's storage connection (its tables are created once)."""
    return ResourceStore.from_settings(current or settings())


async def off_loop(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Blocking storage calls off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def put_claim(name: str, data: Any) -> str:
    """Keep ``data`` (credentials) in the app's claim store; only ``name`` travels on."""
    return claim_store(settings()).put_json(name, data)


def delete_claim(name: str) -> bool:
    """Delete the claim ``name`` (the credentials of a deleted pipeline)."""
    return claim_store(settings()).delete(name)


def delete_claims(prefix: str) -> int:
    """Delete every claim under ``prefix`` (a terminated run's plan and batch state)."""
    return claim_store(settings()).delete_prefix(prefix)


def self_url(req: func.HttpRequest, path: str) -> str:
    """``path`` on the request's host, without the query (it may carry the function key)."""
    parts = urlsplit(req.url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
