"""Liveness probe: GET /api/health, no key required."""

import json
from importlib.metadata import PackageNotFoundError, version

import azure.functions as func

bp = func.Blueprint()


def ferry_version() -> str:
    """Installed version of the ferry distribution, or 0.0.0 when running from an uninstalled tree."""
    try:
        return version("ferry")
    except PackageNotFoundError:
        return "0.0.0"


@bp.function_name("health")
@bp.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    body = {"status": "ok", "version": ferry_version()}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")
