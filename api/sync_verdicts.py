"""``POST /api/syncs/{name}/runs/{run}/verdict``: an external validator's later verdict (auth level FUNCTION).

Body ``{"digest": "sha256:...", "verdict": "approve" | "reject", "reason": "...", "policy": ID}``
(``policy`` only when several external policies await the digest). It is taken only while the
singleton ``sync-<name>`` runs ``run`` and its custom status lists that digest as awaited; then it
is raised as the Durable external event ``orchestrations.sync.verdict_event``, its reason
redacted and cut to ``MAX_REASON`` printable characters. Anything else is
refused before any event is raised: a bad body is 400 naming the field, an unknown sync or a run
or digest nobody waits for is 404. Answers 202 with what was taken. The first verdict raised for a
digest decides: a second one sent before the orchestration took the first is also answered 202 and
then ignored (the status stops listing a digest once its verdict is taken; from then on it is 404).
"""

from __future__ import annotations

import re
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api._http import async_errors, json_response, off_loop, request_body, resource_store, route_name
from api.runs import run_state
from ferry.errors import NotFoundError, UsageError
from ferry.reference import is_valid_digest
from ferry.sync.stored import SYNCS
from ferry.sync.validator import MAX_REASON, shown_reason
from orchestrations.sync import AWAITING, sync_instance_id, verdict_event

bp = df.Blueprint()
_RUN_RE = re.compile(r"[0-9]{14}")
_POLICY_RE = re.compile(r"[^\s\x00-\x1f\x7f]{1,100}")  # a policy id (ferry.sync.policies), printable
_FIELDS = {"digest", "verdict", "reason", "policy"}


def parse_verdict(body: Any) -> dict[str, Any]:
    """The verdict body, checked; UsageError naming the field."""
    if not isinstance(body, dict):
        raise UsageError('body: must be {"digest": "sha256:...", "verdict": "approve" | "reject", "reason": "..."}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:  # the caller's own keys: a few, quoted and cut
        shown = ", ".join(repr(k[:40]) for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                                               else "")
        raise UsageError(f"body: unknown field(s) {shown} (a verdict has {', '.join(sorted(_FIELDS))})")
    digest, verdict, reason, policy = (body.get(k) for k in ("digest", "verdict", "reason", "policy"))
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise UsageError("body.digest: required, a digest (sha256:<64 hex>)")
    if verdict not in ("approve", "reject"):
        raise UsageError('body.verdict: required, "approve" or "reject"')
    if reason is not None and (not isinstance(reason, str) or len(reason) > 10 * MAX_REASON):
        raise UsageError(f"body.reason: must be a string of at most {10 * MAX_REASON} characters")
    if policy is not None and (not isinstance(policy, str) or not _POLICY_RE.fullmatch(policy)):
        raise UsageError("body.policy: must be the id of an external policy (1 to 100 characters without spaces)")
    return {"digest": digest, "verdict": verdict, "reason": reason, "policy": policy}


def awaited_policy(custom_status: Any, run: str, digest: str, policy: str | None, where: str) -> str:
    """The policy whose verdict on ``digest`` the run awaits; NotFoundError when none is awaited."""
    status = custom_status if isinstance(custom_status, dict) else {}
    if status.get("step") != AWAITING or status.get("run") != run:
        raise NotFoundError(f"{where}: run {run} is not awaiting verdicts")
    policies = [str(a.get("policy")) for a in status.get("awaiting") or []
                if isinstance(a, dict) and a.get("digest") == digest]
    if policy is not None:
        policies = [p for p in policies if p == policy]
    if not policies:
        raise NotFoundError(f"{where}: no verdict on {digest}" + (f" by policy {policy}" if policy else "")
                            + " is awaited")
    if len(policies) > 1:
        raise UsageError(f"body.policy: required, several policies await {digest}: {', '.join(sorted(policies))}")
    return policies[0]


async def _verdict(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    name, run = route_name(req), req.route_params.get("run", "")
    if not _RUN_RE.fullmatch(run):  # neither is checked yet: shown quoted and cut
        raise UsageError(f"syncs/{name[:60]!r}/runs/{run[:20]!r}: run must be a run id (YYYYMMDDHHMMSS)")
    where = f"syncs/{name}/runs/{run}"
    given = parse_verdict(request_body(req))
    await off_loop(resource_store().get, SYNCS, name)  # 404 for an unknown sync
    instance_id = sync_instance_id(name)
    state = run_state(await client.get_status(instance_id))
    if state is None or not state.active:
        raise NotFoundError(f"{where}: no tick of this sync is running")
    policy = awaited_policy(state.custom_status, run, given["digest"], given["policy"], where)
    # The payload is kept in the orchestration's history: the reason goes there redacted and cut.
    reason = None if given["reason"] is None else shown_reason(given["reason"])
    await client.raise_event(instance_id, verdict_event(run, policy, given["digest"]),
                             {"verdict": given["verdict"], "reason": reason})
    return json_response({"run": run, "digest": given["digest"], "policy": policy, "verdict": given["verdict"]},
                         202)


@bp.function_name("sync_verdict")
@bp.route(route="syncs/{name}/runs/{run}/verdict", methods=[func.HttpMethod.POST])
@bp.durable_client_input(client_name="client")
@async_errors
async def sync_verdict(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _verdict(req, client)
