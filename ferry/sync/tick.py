"""One tick of a sync: look at the upstream tags, gate what changed, promote what passed.

1. List the source repository's tags and apply the filter chain.
2. Resolve each selected tag with **HEAD only**. A tag whose digest and policies are those of its
   last evaluation is unchanged: no manifest GET, no byte moved, no notification.
3. A changed tag's digest is copied (by digest, untagged) into the landing repository (staging, or
   the target itself) through the gate: the policies review the whole plan before a byte moves, so
   a refused candidate leaves the target untouched and the stable tag on the last good digest.
4. A candidate that passed is promoted: the unique rollback tag first, then the stable tag, both to
   the digest that was gated (a copy by digest within the target registry; never the tag again).
5. The verdict is remembered with the policies' hash, the run recorded, and webhooks notified.

Rollback (:func:`rollback`) repoints a stable tag to an earlier promotion's unique tag.

May be imported by the faces (CLI, and the Functions app's sync orchestration as it comes).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from ferry.azure.claims import MemoryClaimStore
from ferry.errors import ConflictError, FerryError, InvalidReferenceError, NotFoundError, UsageError
from ferry.jobs.endpoints import JobEnvironment, registry_client
from ferry.jobs.phases import JobOutcome, run_job
from ferry.jobs.spec import Artifacts, JobOptions, JobSpec, RegistryEndpoint
from ferry.oci.descriptor import Descriptor
from ferry.plan import CopyRequest
from ferry.reference import is_valid_tag
from ferry.sync.definition import SyncDefinition
from ferry.sync.incremental import export_changed
from ferry.sync.notify import Candidate, image_event, notify
from ferry.sync.policies import ExternalPolicy, PolicyGate, policies_hash
from ferry.sync.state import MAX_TAGS, SyncRun, SyncState, TagOutcome, TagState
from ferry.sync.validator import Answer, Callback
from ferry.transports.base import Source

log = logging.getLogger(__name__)
SOURCE_CLAIM = "sync/source"
#: Seconds of ``Retry-After`` one tick's source client waits in-process in all; once the registry
#: has asked for more, the next answer asking to wait makes the tick hold off on the orchestration's
#: timer (a tag list of 1,000 pages, or 1,000 HEADs, each asked to wait 59 s, held it for hours).
MAX_TICK_WAIT = 60.0
#: Verdicts one run awaits at most: the orchestration's custom status lists each one for the callback
#: (tag, digest, policy id: up to 400 characters) and stays under 16 KB. The tags after the one that
#: reached it are looked at by the next tick.
MAX_AWAITED = 32


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def source_endpoint(sync: SyncDefinition, env: JobEnvironment) -> RegistryEndpoint:
    """The upstream registry; credentials given with the sync are kept as a claim bound to it."""
    ref = None
    if sync.source_credentials is not None:
        ref = env.claims.put_json(SOURCE_CLAIM, sync.source_credentials.to_claim(sync.source_registry))
    return RegistryEndpoint(sync.source_registry, ref)


def target_endpoint(sync: SyncDefinition) -> RegistryEndpoint:
    return RegistryEndpoint(sync.target_registry)


def _begin(sync: SyncDefinition, state: SyncState, env: JobEnvironment,
           run_id: str) -> tuple[JobEnvironment, RegistryEndpoint, SyncRun | None]:
    """What every pass of a run starts with: the sync resolved and its hosts checked before any
    connection, an environment whose credentials stay in memory, the source endpoint, and the run's
    record when an earlier pass wrote one."""
    if sync.export_pipeline is not None and sync.archive is None:
        raise UsageError(f"sync {sync.name}: export pipeline {sync.export_pipeline!r} is not resolved to its "
                         "container (SyncDefinition.through)")
    if env.egress is not None:
        sync.check_egress(env.egress)
    recorded = next((SyncRun.from_json(r) for r in state.runs() if r.get("run_id") == run_id), None)
    env = dataclasses.replace(env, claims=MemoryClaimStore())  # the tick's credentials stay in memory
    return env, source_endpoint(sync, env), recorded


def run_sync(sync: SyncDefinition, state: SyncState, env: JobEnvironment, *, run_id: str,
             dry_run: bool = False, later_verdicts: bool = False) -> SyncRun:
    """One tick; every selected tag gets an outcome, and the run is recorded in ``state``.

    With ``later_verdicts`` an external validator may answer ``pending``: its tag is ``awaiting``
    (nothing landed, nothing remembered) and ``SyncRun.awaiting`` lists the verdicts to wait for;
    :func:`finish_awaiting` takes them. Without it, ``pending`` is a rejection.

    When the source registry says to hold off (a ``Retry-After`` longer than a request may wait,
    or ``RateLimit-Remaining: 0``), the tick stops asking: the run is left unfinished with
    ``retry_after`` seconds, and running it again under the same ``run_id`` resumes it (tags
    judged already are unchanged then, and their outcomes in the record are kept).

    With an allow-list in ``env.egress``, every host the sync names is checked before the first
    connection (the definition may predate a narrower FERRY_ALLOWED_HOSTS)."""
    env, source, earlier = _begin(sync, state, env, run_id)
    record = SyncRun(run_id, started=earlier.started if earlier else _now(), dry_run=dry_run)
    requests: Counter[str] = Counter(earlier.requests if earlier else {})
    policies = policies_hash(sync.policies)
    callback = Callback(sync.name, run_id) if later_verdicts else None
    externals = sum(isinstance(p, ExternalPolicy) for p in sync.policies)
    complete = True
    with ExitStack() as stack:
        client = registry_client(source, env, stack, 8)
        client.rate_limit.max_asked_wait = MAX_TICK_WAIT  # more is waited on the orchestration's timer (a hold)
        try:
            tags = _selected(sync, client.list_tags(sync.source_repository), record)
            requests["tag list"] += 1
            for i, tag in enumerate(tags):
                if client.rate_limit.hold_off:
                    raise HeldOff(client.rate_limit.hold_off)
                if callback is not None and _awaits_enough(record, externals, len(tags) - i):
                    complete = False
                    break
                head = client.head_manifest(sync.source_repository, tag)
                requests["HEAD"] += 1
                record.tags.append(_one_tag(sync, state, env, source, tag, head, policies, run_id, callback,
                                            dry_run))
        except (FerryError, HeldOff) as exc:
            if exc.retry_after is None:
                _record_failure(state, record, requests, exc)
                raise
            record.retry_after = exc.retry_after
            log.warning("sync %s: the registry %s asked to hold off %.0f s (%s)", sync.name, sync.source_registry,
                        exc.retry_after, exc)
        pending = [t for t in record.tags if t.status == "pending"]
        if pending and record.retry_after is None:  # an archive target: the changed tags go out together
            record.archive, record.archive_bytes = export_changed(sync, state, env, source, pending, policies,
                                                                  run_id)
    if record.retry_after is None and complete and not dry_run:
        state.keep_only([t.tag for t in record.tags])  # a tag no longer selected is judged afresh if it returns
    record.tags = _kept(earlier, record.tags)
    record.requests = dict(requests)
    record.awaiting = _awaited(sync, record.tags)
    record.finished = None if record.awaiting or record.retry_after is not None else _now()
    state.add_run(record)
    return record


def _record_failure(state: SyncState, record: SyncRun, requests: Counter[str], exc: Exception) -> None:
    """Record a tick that could not look at its tags (the timer reads when it last started)."""
    record.failure, record.requests, record.finished = str(exc), dict(requests), _now()
    try:
        state.add_run(record)
    except FerryError:
        log.warning("sync run %s: its failure could not be recorded", record.run_id, exc_info=True)


def _selected(sync: SyncDefinition, listed: list[str], record: SyncRun) -> list[str]:
    """The chain's selection from ``listed``, at most :data:`MAX_TAGS` (the run says how many it left out)."""
    tags = sync.tags.select(listed)
    if len(tags) > MAX_TAGS:
        record.notes.append(f"{len(tags)} tags selected; this tick looked at the first {MAX_TAGS} "
                            "(narrow the filter, e.g. with 'latest')")
    return tags[:MAX_TAGS]


def _awaits_enough(record: SyncRun, externals: int, left: int) -> bool:
    """Whether one more tag could take the run past :data:`MAX_AWAITED` verdicts (noted in the run)."""
    awaited = sum(len(t.awaiting) for t in record.tags)
    if awaited and awaited + externals > MAX_AWAITED:
        record.notes.append(f"{awaited} verdicts awaited; the other {left} tags are looked at next tick")
        return True
    return False


class HeldOff(Exception):
    """The registry said no requests are left for ``retry_after`` seconds (``RateLimit-Remaining: 0``)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"RateLimit-Remaining: 0 for {retry_after:.0f} s")
        self.retry_after: float | None = retry_after


def _kept(earlier: SyncRun | None, outcomes: list[TagOutcome]) -> list[TagOutcome]:
    """``outcomes`` of a resumed run, keeping what the earlier pass did with a tag now unchanged."""
    before = {t.tag: t for t in earlier.tags} if earlier else {}
    kept = [before[t.tag] if t.status == "unchanged" and t.tag in before else t for t in outcomes]
    seen = {t.tag for t in kept}
    return kept + [t for tag, t in before.items() if tag not in seen and t.status != "unchanged"]


def _awaited(sync: SyncDefinition, tags: list[TagOutcome]) -> list[dict[str, Any]]:
    timeouts = {p.id: p.timeout_seconds for p in sync.policies if isinstance(p, ExternalPolicy)}
    return [{"tag": t.tag, "digest": t.digest, "policy": policy, "timeoutSeconds": timeouts[policy]}
            for t in tags if t.status == "awaiting" for policy in t.awaiting]


def finish_awaiting(sync: SyncDefinition, state: SyncState, env: JobEnvironment, *, run_id: str,
                    verdicts: list[dict[str, Any]]) -> SyncRun:
    """Finish run ``run_id`` with the verdicts that came on the callback (or a timeout's rejection):
    ``{"tag", "digest", "policy", "verdict", "reason"}`` each. Each awaiting tag is judged again
    with them and promoted or rejected, at the digest it awaited (never the tag again)."""
    env, source, record = _begin(sync, state, env, run_id)
    if record is None:
        raise NotFoundError(f"syncs/{sync.name}: run {run_id} is not recorded")
    given = {(str(v["policy"]), str(v["digest"])): Answer.given(str(v.get("verdict")), v.get("reason"))
             for v in verdicts}
    callback = Callback(sync.name, run_id, given, can_wait=False)
    policies = policies_hash(sync.policies)
    with ExitStack() as stack:
        client = registry_client(source, env, stack, 8)
        for i, tag in enumerate(record.tags):
            if tag.status != "awaiting" or tag.digest is None:
                continue
            head = client.head_manifest(sync.source_repository, tag.digest)
            record.requests["HEAD"] = record.requests.get("HEAD", 0) + 1
            if head is None:
                record.tags[i] = TagOutcome(tag.tag, tag.digest, "failed",
                                            [f"{sync.source_repository}@{tag.digest} vanished while awaiting"])
                continue
            record.tags[i] = _judge_tag(sync, state, env, source, Candidate(tag.tag, head.digest, head.media_type,
                                                                            head.size), policies, run_id, callback)
    record.awaiting, record.finished = [], _now()
    state.add_run(record)
    return record


def _one_tag(sync: SyncDefinition, state: SyncState, env: JobEnvironment, source: RegistryEndpoint, tag: str,
             head: Descriptor | None, policies: str, run_id: str, callback: Callback | None,
             dry_run: bool) -> TagOutcome:
    if head is None:
        return TagOutcome(tag, None, "failed", [f"{sync.source_repository}:{tag} vanished while the tick ran"])
    previous = state.tag(tag)
    if previous is not None and previous.digest == head.digest and previous.policies == policies:
        return TagOutcome(tag, head.digest, "unchanged", previous.reasons)
    if dry_run:
        return TagOutcome(tag, head.digest, "would-sync", [f"{previous.digest if previous else 'nothing'} -> "
                                                           f"{head.digest}"])
    if sync.archive is not None:
        return TagOutcome(tag, head.digest, "pending")
    return _judge_tag(sync, state, env, source, Candidate(tag, head.digest, head.media_type, head.size),
                      policies, run_id, callback)


def _judge_tag(sync: SyncDefinition, state: SyncState, env: JobEnvironment, source: RegistryEndpoint,
               candidate: Candidate, policies: str, run_id: str, callback: Callback | None) -> TagOutcome:
    try:
        return _gate_and_promote(sync, state, env, source, candidate, policies, run_id, callback)
    except FerryError as exc:
        log.warning("sync %s, tag %s: %s", sync.name, candidate.tag, exc)
        return TagOutcome(candidate.tag, candidate.digest, "failed", [str(exc)])


def _gate_and_promote(sync: SyncDefinition, state: SyncState, env: JobEnvironment, source: RegistryEndpoint,
                      candidate: Candidate, policies: str, run_id: str, callback: Callback | None) -> TagOutcome:
    landing = JobSpec(source=source, destination=target_endpoint(sync),
                      select=(Artifacts((CopyRequest(sync.source_repository, candidate.digest,
                                                     sync.landing_repository, ()),)),))
    gates: list[PolicyGate] = []

    def policy_gate(opened: Source) -> list[PolicyGate]:
        gates.append(PolicyGate(sync.policies, opened, callback=callback))
        return gates[-1:]

    outcome = run_job(landing, env, gates=policy_gate)
    [result] = outcome.report.artifacts
    verdict = gates[0].verdicts.get(0) if gates else None
    if outcome.refused and verdict is not None and verdict.pending:  # nothing landed; judged again later
        return TagOutcome(candidate.tag, candidate.digest, "awaiting", verdict.reasons, awaiting=verdict.awaited)
    if outcome.refused:
        state.set_tag(candidate.tag, TagState(candidate.digest, "rejected", policies, list(outcome.refused)))
        problems = notify(sync, image_event(sync, candidate, promoted=False, run_id=run_id, unique_tag=None,
                                            reasons=list(outcome.refused)), env.egress)
        return TagOutcome(candidate.tag, candidate.digest, "rejected", [*outcome.refused, *problems],
                          bytes_moved=outcome.report.bytes_uploaded)
    if not result.ok:
        raise FerryError(f"landing {candidate.digest} in {sync.landing_repository}: {result.error}")
    unique = sync.unique_tag(candidate.tag, run_id)
    promoted = promote(sync, candidate.digest, candidate.tag, unique, env)
    state.set_tag(candidate.tag, TagState(candidate.digest, "promoted", policies, [], unique))
    problems = notify(sync, image_event(sync, candidate, promoted=True, run_id=run_id, unique_tag=unique,
                                        reasons=[]), env.egress)
    # Promotion works inside the target registry: every blob is there already (no byte crosses again).
    return TagOutcome(candidate.tag, candidate.digest, "promoted", problems, promoted,
                      bytes_moved=outcome.report.bytes_uploaded)


def _tag_in_target(sync: SyncDefinition, repository: str, reference: str, tag: str, env: JobEnvironment, *,
                   replace: bool) -> JobOutcome:
    """Point ``target_repository:tag`` at ``repository@reference`` of the target registry."""
    spec = JobSpec(source=target_endpoint(sync), destination=target_endpoint(sync),
                   select=(Artifacts((CopyRequest(repository, reference, sync.target_repository, (tag,)),)),),
                   options=JobOptions(overwrite_tags=replace))
    return run_job(spec, env)


def promote(sync: SyncDefinition, digest: str, tag: str, unique: str, env: JobEnvironment) -> list[str]:
    """Write ``unique`` (never replacing anything), then the stable ``tag``, both to ``digest``."""
    for name, replace in ((unique, False), (tag, True)):
        outcome = _tag_in_target(sync, sync.landing_repository, digest, name, env, replace=replace)
        if not outcome.ok:
            error = outcome.report.artifacts[0].error
            raise ConflictError(f"promoting {digest} as {sync.target_repository}:{name}: {error}")
    return [unique, tag]


def rollback(sync: SyncDefinition, tag: str, to: str, env: JobEnvironment) -> str:
    """Point the stable ``tag`` at the digest of the earlier promotion ``to`` (a unique tag); its digest."""
    for field_name, value in (("tag", tag), ("to", to)):
        if not is_valid_tag(value):
            raise InvalidReferenceError(f"rollback {field_name}: {value!r} is not a tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, "
                                        "at most 128 characters)")
    if not sync.is_unique_tag_of(tag, to):
        raise UsageError(f"rollback of {tag!r}: {to!r} is not one of its promotion tags "
                         f"({sync.unique_tag(tag, 'RUNID')})")
    outcome = _tag_in_target(sync, sync.target_repository, to, tag, env, replace=True)
    [result] = outcome.report.artifacts
    if not result.ok or result.digest is None:
        failure = NotFoundError if result.exit_code == NotFoundError.exit_code else FerryError
        raise failure(f"rollback of {sync.target_repository}:{tag} to {to}: {result.error}")
    return result.digest
