"""Export and import pipelines over HTTP, in ACR's shapes (auth level FUNCTION, the app's default).

* ``PUT/GET/DELETE /api/exportPipelines/{name}``, ``GET /api/exportPipelines``
* ``PUT/GET/DELETE /api/importPipelines/{name}``, ``GET /api/importPipelines``

Bodies are parsed once into :mod:`ferry.transfer.models`; what is stored is the model's normalized
JSON (never a password: given credentials go to a claim, and only its name is kept).
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from api._http import (
    delete_claim,
    json_response,
    put_claim,
    request_body,
    resource_store,
    route_name,
    settings,
    sync_errors,
)
from ferry.egress import EgressPolicy
from ferry.errors import UsageError
from ferry.settings import Settings
from ferry.transfer.build import check_pipeline_egress
from ferry.transfer.fields import credentials_claim, is_valid_name
from ferry.transfer.models import (
    COLLECTIONS,
    ExportPipeline,
    ImportPipeline,
    Kind,
    PipelineRegistry,
    arm_resource,
    parse_export_pipeline,
    parse_import_pipeline,
)
from ferry.transfer.store import Record

bp = df.Blueprint()
log = logging.getLogger("ferry.api")


def pipeline_view(collection: str, record: Record) -> dict[str, object]:
    properties = dict(record.body.get("properties") or {})
    properties["provisioningState"] = "Succeeded"
    return arm_resource(collection, record.name, properties)


def _parse(kind: Kind, name: str, body: object, current: Settings) -> ExportPipeline | ImportPipeline:
    if kind == "export":
        return parse_export_pipeline(name, body, default_registry=current.registry)
    return parse_import_pipeline(name, body, default_registry=current.registry)


def _registry_of(pipeline: ExportPipeline | ImportPipeline) -> PipelineRegistry:
    return pipeline.source if isinstance(pipeline, ExportPipeline) else pipeline.target


def _check_rebinding(pipeline: ExportPipeline | ImportPipeline, stored: Record | None, current: Settings) -> None:
    """A stored password stays with the registry it was given for: a PUT that keeps the echoed
    ``credentialsRef`` but names another registry must give the password again."""
    registry = _registry_of(pipeline)
    if registry.credentials is not None or registry.credentials_ref is None:
        return
    before = _registry_of(_parse(pipeline.kind, pipeline.name, stored.body, current)) if stored else None
    if before is None or before.registry_uri != registry.registry_uri:
        side = "source" if pipeline.kind == "export" else "target"
        raise UsageError(f"properties.{side}.credentials: the registry changed to {registry.registry_uri}; give "
                         "credentials {username, password} again (a stored password goes only to its own registry)")


def _put_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    name = route_name(req)
    current = settings()
    pipeline = _parse(kind, name, request_body(req), current)
    check_pipeline_egress(pipeline, EgressPolicy.from_settings(current))
    store = resource_store(current)
    collection = COLLECTIONS[kind]
    stored = store.find(collection, name)
    _check_rebinding(pipeline, stored, current)
    registry = _registry_of(pipeline)
    if registry.credentials is not None:
        registry.credentials_ref = put_claim(pipeline.credentials_claim,
                                             registry.credentials.to_claim(registry.registry_uri))
    existed = stored is not None
    record = store.put(collection, Record(name, {"properties": pipeline.properties()}))
    log.info("%s/%s %s", collection, name, "updated" if existed else "created")
    return json_response(pipeline_view(collection, record), 200 if existed else 201)


def _get_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    collection = COLLECTIONS[kind]
    return json_response(pipeline_view(collection, resource_store().get(collection, route_name(req))))


def _list_pipelines(kind: Kind) -> func.HttpResponse:
    collection = COLLECTIONS[kind]
    return json_response({"value": [pipeline_view(collection, r) for r in resource_store().list(collection)]})


def _delete_pipeline(req: func.HttpRequest, kind: Kind) -> func.HttpResponse:
    name = route_name(req)
    if not is_valid_name(name):  # a name that cannot exist was never stored
        return func.HttpResponse(status_code=204)
    deleted = resource_store().delete(COLLECTIONS[kind], name)
    delete_claim(credentials_claim(COLLECTIONS[kind], name))  # its password goes with it
    return func.HttpResponse(status_code=200 if deleted else 204)
@bp.function_name("export_pipeline_put")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.PUT])
@sync_errors
def export_pipeline_put(req: func.HttpRequest) -> func.HttpResponse:
    return _put_pipeline(req, "export")


@bp.function_name("export_pipeline_get")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.GET])
@sync_errors
def export_pipeline_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get_pipeline(req, "export")


@bp.function_name("export_pipeline_delete")
@bp.route(route="exportPipelines/{name}", methods=[func.HttpMethod.DELETE])
@sync_errors
def export_pipeline_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete_pipeline(req, "export")


@bp.function_name("export_pipeline_list")
@bp.route(route="exportPipelines", methods=[func.HttpMethod.GET])
@sync_errors
def export_pipeline_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list_pipelines("export")


@bp.function_name("import_pipeline_put")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.PUT])
@sync_errors
def import_pipeline_put(req: func.HttpRequest) -> func.HttpResponse:
    return _put_pipeline(req, "import")


@bp.function_name("import_pipeline_get")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.GET])
@sync_errors
def import_pipeline_get(req: func.HttpRequest) -> func.HttpResponse:
    return _get_pipeline(req, "import")


@bp.function_name("import_pipeline_delete")
@bp.route(route="importPipelines/{name}", methods=[func.HttpMethod.DELETE])
@sync_errors
def import_pipeline_delete(req: func.HttpRequest) -> func.HttpResponse:
    return _delete_pipeline(req, "import")


@bp.function_name("import_pipeline_list")
@bp.route(route="importPipelines", methods=[func.HttpMethod.GET])
@sync_errors
def import_pipeline_list(req: func.HttpRequest) -> func.HttpResponse:
    return _list_pipelines("import")

