"""A scheduled incremental transfer: a sync whose target is an archive container.

Each tick exports the tags that changed (at the digests HEAD just saw) into one archive,
``<container>/<sync>-<runId>.tar``, through the same gate, and leaves out every blob the previous
tick's archive carried (its ``baseline``). A disconnected side whose blob trigger imports every
archive in order receives, on a schedule, only what is new.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

from ferry.jobs.endpoints import JobEnvironment
from ferry.jobs.gate import was_refused
from ferry.jobs.phases import run_job
from ferry.jobs.spec import ArchiveEndpoint, Artifacts, JobOptions, JobSpec, RegistryEndpoint, StorageAccess
from ferry.plan import CopyRequest
from ferry.sync.definition import SyncDefinition
from ferry.sync.notify import Candidate, image_event, notify
from ferry.sync.policies import PolicyGate
from ferry.sync.state import SyncState, TagOutcome, TagState


def archive_url(sync: SyncDefinition, run_id: str) -> str:
    assert sync.archive is not None
    return f"{sync.archive.uri.rstrip('/')}/{sync.name}-{run_id}.tar"


def export_changed(sync: SyncDefinition, state: SyncState, env: JobEnvironment, source: RegistryEndpoint,
                   changed: list[TagOutcome], policies: str, run_id: str) -> tuple[str | None, int]:
    """Export ``changed`` (tags with the digests seen) into this tick's archive; each outcome becomes
    promoted (in the archive), rejected (by the gate) or failed, and the promoted and rejected ones
    are notified. The archive's URL (None when it was not published) and the bytes written."""
    assert sync.archive is not None
    storage = StorageAccess(sync.archive.storage_access_mode,  # type: ignore[arg-type]
                            sync.archive.key_vault_uri)
    url = archive_url(sync, run_id)
    requests = tuple(CopyRequest(sync.source_repository, t.digest or "", sync.source_repository, (t.tag,))
                     for t in changed)
    spec = JobSpec(source=source,
                   destination=ArchiveEndpoint(url, storage, baseline=state.last_archive()),
                   select=(Artifacts(requests),), options=JobOptions(continue_on_errors=True))
    outcome = run_job(spec, env, gates=lambda opened: [PolicyGate(sync.policies, opened)])
    for tag, result in zip(changed, outcome.report.artifacts, strict=True):
        if result.ok and outcome.published:
            tag.status, tag.promoted = "promoted", [url]
            state.set_tag(tag.tag, TagState(tag.digest or "", "promoted", policies, [], None))
        elif was_refused(result):
            tag.status, tag.reasons = "rejected", [result.error or ""]
            state.set_tag(tag.tag, TagState(tag.digest or "", "rejected", policies, [result.error or ""]))
        else:
            tag.status, tag.reasons = "failed", [result.error or "the archive was not published"]
            continue
        candidate = Candidate(tag.tag, tag.digest or "", result.media_type or "", result.size)
        tag.reasons += notify(sync, image_event(sync, candidate, promoted=tag.status == "promoted", run_id=run_id,
                                                unique_tag=None, reasons=list(tag.reasons), archive=url),
                              env.egress)
    if outcome.published:
        state.set_last_archive(url)
        return url, outcome.report.bytes_uploaded
    return None, outcome.report.bytes_uploaded
