"""``POST /api/importImage``: ACR's ImportImageParameters (auth level FUNCTION).

The body is parsed once (:mod:`ferry.transfer.import_image`); the ``image_import`` orchestration is
started with ``{"job": JobSpec JSON}``, or with ``{"handoff": Handoff JSON}`` when the app settings
``FERRY_ACR_IMPORT_HANDOFF=true`` and ``FERRY_TARGET_ACR_RESOURCE_ID`` hand the import to that ACR.
Credentials go to a claim; only its name enters orchestration input. Answers 202 with the Durable
status URLs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api._http import async_errors, off_loop, put_claim, request_body, settings
from ferry.azure.arm import login_server
from ferry.egress import EgressPolicy
from ferry.jobs.endpoints import check_endpoint
from ferry.transfer.build import IMPORT_IMAGE_CREDENTIALS, image_import_handoff, image_import_job
from ferry.transfer.handoff import handoff_target
from ferry.transfer.import_image import parse_import_image

bp = df.Blueprint()
log = logging.getLogger("ferry.api")

IMAGE_IMPORT_ORCHESTRATOR = "image_import"


async def _import_image(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    current = settings()
    params = parse_import_image(request_body(req))
    handoff = handoff_target(current)  # the target ACR's resource id when ACR imports the image itself
    # Name the claim now, write it only once the job is valid: a refused request leaves no secret behind.
    credentials_ref = f"{IMPORT_IMAGE_CREDENTIALS}{uuid.uuid4().hex}" if params.credentials is not None else None
    client_input: dict[str, Any]
    if handoff is not None:
        client_input = {"handoff": image_import_handoff(params, handoff, credentials_ref).to_json()}
        target = bound = handoff
    else:
        host = params.registry_uri
        if host is None:
            assert params.resource_id is not None
            host = await off_loop(login_server, params.resource_id, current)
        job = image_import_job(params, host, credentials_ref, current)
        check_endpoint(job.source, EgressPolicy.from_settings(current), "source.registryUri")
        client_input = {"job": job.to_json()}
        target, bound = job.destination.display, host
    if params.credentials is not None and credentials_ref is not None:
        # Bound to the host it is for: Ferry's source registry, or (handoff) the ACR that receives it.
        await off_loop(put_claim, credentials_ref, params.credentials.to_claim(bound))
    instance_id = f"importimage-{uuid.uuid4().hex[:12]}"
    await client.start_new(IMAGE_IMPORT_ORCHESTRATOR, instance_id, client_input=client_input)
    log.info("importImage %s: %s -> %s", instance_id, params.source_image, target)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@bp.function_name("import_image")
@bp.route(route="importImage", methods=[func.HttpMethod.POST])
@bp.durable_client_input(client_name="client")
@async_errors
async def import_image(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _import_image(req, client)
