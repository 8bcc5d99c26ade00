"""Gate policies as data, and :class:`PolicyGate`, which evaluates them on each candidate document.

A sync's policies are a JSON list (:func:`from_json`, :func:`to_json`). Each has a ``kind``, an
optional ``id`` (unique; verdicts name the policy by it; the default derives from the kind) and
the kind's fields. Bad input is a UsageError naming the path (``policies[2].forbid[0]: ...``)::

    {"kind": "env", "id": "env-not-red", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}
        also "require": [values] (must be set to one of them), "present": true | false,
        "caseSensitive": false (the default compares values case-insensitively). Checked in the
        config of every image manifest (attestation manifests aside).
    {"kind": "platforms", "require": ["linux/amd64", "linux/arm64"]}   linux/arm64 is met by linux/arm64/v8
    {"kind": "max-size", "bytes": 500000000, "of": "total"}           "total" (every blob, referrers'
        too: what the copy moves) or "image" (the artifact's own configs and layers)
    {"kind": "label", "key": "org.opencontainers.image.source", "value": "..."}   on every image config
    {"kind": "annotation", "key": "...", "value": "...", "on": "root"}           or "manifests" (each image
        manifest); "value" is optional for both: without it the key must be present
    {"kind": "denied-layers", "digests": ["sha256:..."]}
    {"kind": "referrer", "artifactType": "application/spdx+json"}     a signature or SBOM must travel with it
    {"kind": "signature", "publicKey": "-----BEGIN PUBLIC KEY-----\\n..."}    cosign, see ferry/sync/signatures.py
    {"kind": "rego", "module": "package ferry.gate\\nimport rego.v1\\ndeny contains msg if { ... }"}
        evaluated in-process with ``regopy`` 1.5.2 (rego-cpp's Python binding: no OPA server, offline;
        see ferry/sync/rego.py): each string of ``deny`` is a reason to refuse
    {"kind": "external", "url": "https://validator.example/check", "timeoutSeconds": 600}
        POSTs the candidate and takes the verdict from the answer, or, when it answers "pending",
        from the callback later (ferry/sync/validator.py); no verdict in time is a refusal

Every refusal names the policy and says what to change: ``policy env-not-red: linux/amd64 config
Env BACKGROUND_COLOR=RED matches forbidden value RED``. :func:`policies_hash` identifies a policy
set, so a sync can remember which policies judged a digest.

May be imported by ``ferry/sync`` and the faces.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import FerryError, TransientError
from ferry.jobs.gate import Refusal
from ferry.plan import CopyPlan
from ferry.sync.document import CONFIG_LIMIT, SCHEMA, candidate_document
from ferry.sync.kinds import (
    AnnotationPolicy,
    DeniedLayersPolicy,
    EnvPolicy,
    ExternalPolicy,
    LabelPolicy,
    MaxSizePolicy,
    PlatformsPolicy,
    Policy,
    Reader,
    ReferrerPolicy,
    RegoPolicy,
    SignaturePolicy,
)
from ferry.sync.signatures import SignatureTagReader, read_signature_tag
from ferry.sync.validator import Callback
from ferry.transfer.fields import bad
from ferry.transports.base import Source

log = logging.getLogger(__name__)

KINDS: dict[str, type[Policy]] = {cls.kind: cls for cls in (
    EnvPolicy, PlatformsPolicy, MaxSizePolicy, LabelPolicy, AnnotationPolicy, DeniedLayersPolicy,
    ReferrerPolicy, SignaturePolicy, RegoPolicy, ExternalPolicy)}
_ID_RE = re.compile(r"\S{1,100}")
#: External validators one sync may name: each adds an awaited verdict per changed tag to the run's status.
MAX_EXTERNAL = 4

__all__ = ["KINDS", "AnnotationPolicy", "DeniedLayersPolicy", "EnvPolicy", "ExternalPolicy", "Finding",
           "LabelPolicy", "MaxSizePolicy", "PlatformsPolicy", "Policy", "PolicyGate", "ReferrerPolicy", "RegoPolicy",
           "SignaturePolicy", "Verdict", "evaluate", "from_json", "parse_policy", "policies_hash", "to_json"]


def from_json(data: Any, path: str = "policies") -> tuple[Policy, ...]:
    """Policies from their JSON list; UsageError naming the path of the first problem."""
    if not isinstance(data, list):
        raise bad(path, "must be a JSON list of policies")
    policies: list[Policy] = []
    where: dict[str, int] = {}
    externals = [i for i, item in enumerate(data) if isinstance(item, dict) and item.get("kind") == "external"]
    if len(externals) > MAX_EXTERNAL:
        raise bad(f"{path}[{externals[MAX_EXTERNAL]}]", f"at most {MAX_EXTERNAL} external validators per sync "
                                                        "(a run awaits each one's verdict on every changed tag)")
    for i, item in enumerate(data):
        policy = parse_policy(item, f"{path}[{i}]")
        if policy.id in where:
            raise bad(f"{path}[{i}].id", f"{policy.id!r} is already the id of {path}[{where[policy.id]}]; "
                                         "give each policy an id of its own")
        where[policy.id] = i
        policies.append(policy)
    return tuple(policies)


def parse_policy(data: Any, path: str) -> Policy:
    """One policy from its JSON object; UsageError naming ``path`` and the field."""
    reader = Reader(data, path)
    kind = data.get("kind")
    if kind not in KINDS:
        problem = "required" if kind is None else f"{kind!r} is not a kind of policy"
        raise bad(f"{path}.kind", f"{problem}; one of {', '.join(KINDS)}")
    policy_id = reader.text("id", required=False)
    if policy_id is not None and not _ID_RE.fullmatch(policy_id):
        raise bad(f"{path}.id", "must be 1 to 100 characters without spaces")
    policy = KINDS[kind].parse(reader, policy_id)
    reader.finish()
    return policy


def to_json(policies: Sequence[Policy]) -> list[dict[str, Any]]:
    """The JSON list :func:`from_json` reads back to equal policies (defaults written out)."""
    return [policy.to_json() for policy in policies]


def policies_hash(policies: Sequence[Policy]) -> str:
    """``sha256:...`` of the canonical JSON of ``policies`` (sorted by id, defaults written out) and
    the document schema: equal for the same rules however written, different when any rule changes."""
    canonical = json.dumps({"document": SCHEMA, "policies": sorted(to_json(policies), key=lambda p: p["id"])},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    """One reason to refuse: ``policy`` (an id; None when the candidate could not be read) and why."""

    policy: str | None
    reason: str
    #: An external validator's verdict still to come (a refusal for now, not a rejection).
    pending: bool = False

    def __str__(self) -> str:
        return f"policy {self.policy}: {self.reason}" if self.policy else self.reason


@dataclass(frozen=True)
class Verdict:
    """What the policies said of one candidate digest: accepted when nothing was found against it."""

    digest: str
    findings: tuple[Finding, ...]
    policies_hash: str

    @property
    def accepted(self) -> bool:
        return not self.findings

    @property
    def reasons(self) -> list[str]:
        return [str(finding) for finding in self.findings]

    @property
    def pending(self) -> bool:
        """Refused only for verdicts still to come: the candidate awaits them, it is not rejected."""
        return bool(self.findings) and all(finding.pending for finding in self.findings)

    @property
    def awaited(self) -> list[str]:
        """The ids of the policies whose verdicts are still to come."""
        return [str(finding.policy) for finding in self.findings if finding.pending]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "accepted": self.accepted, "reasons": self.reasons,
                "findings": [{"policy": f.policy, "reason": f.reason} for f in self.findings],
                "policiesHash": self.policies_hash}


def evaluate(policies: Sequence[Policy], document: dict[str, Any],
             callback: Callback | None = None) -> tuple[Finding, ...]:
    """Every policy's findings on ``document``. A policy that cannot be evaluated refuses (fails closed).
    External validators may answer later through ``callback``: their findings are then ``pending``."""
    findings: list[Finding] = []
    for policy in policies:
        try:
            if isinstance(policy, ExternalPolicy):
                answer = policy.answer(document, callback)
                if answer.verdict != "approve":
                    findings.append(Finding(policy.id, answer.reason, pending=answer.verdict == "pending"))
                continue
            reasons = policy.check(document)
        except Exception as exc:  # a broken rule must refuse, never let a candidate through
            log.warning("policy %s could not be evaluated on %s", policy.id, document.get("digest"), exc_info=True)
            reasons = [f"could not be evaluated: {exc}"]
        findings += [Finding(policy.id, reason) for reason in reasons]
    return tuple(findings)


@dataclass
class PolicyGate:
    """A :class:`~ferry.jobs.gate.PlanGate` that refuses each live artifact any policy finds against.

    ``source`` is the plan's Source: image configs and signature payloads are read from it, and
    ``sha256-<hex>.sig`` tags through ``signature_tag_reader`` (by default from ``source``).
    After :meth:`review`, ``verdicts`` and ``documents`` hold, per artifact index, what was judged.
    A candidate that cannot be read for a permanent reason is refused; a transient failure raises
    TransientError, so the planning step is retried rather than a digest rejected.
    """

    policies: Sequence[Policy]
    source: Source
    gate_name: str = "policies"
    signature_tag_reader: SignatureTagReader | None = None
    config_limit: int = CONFIG_LIMIT
    callback: Callback | None = None
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    documents: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.gate_name

    @property
    def policy_hash(self) -> str:
        return policies_hash(self.policies)

    def review(self, plan: CopyPlan) -> list[Refusal]:
        refusals = []
        for index, artifact in enumerate(plan.artifacts):
            if artifact.failed or artifact.root is None:
                continue
            verdict = self.judge(plan, index)
            if not verdict.accepted:
                refusals.append(Refusal(index, "; ".join(verdict.reasons)))
        return refusals

    def judge(self, plan: CopyPlan, index: int) -> Verdict:
        """The verdict on ``plan.artifacts[index]``, recorded in ``verdicts`` (and its document in ``documents``)."""
        artifact = plan.artifacts[index]
        digest = artifact.root.digest if artifact.root else ""
        wants_signatures = any(p.needs_signatures for p in self.policies)
        reader = self.signature_tag_reader or read_signature_tag(self.source)
        try:
            document = candidate_document(plan, index, self.source, signatures=wants_signatures,
                                          signature_tag_reader=reader, config_limit=self.config_limit)
        except FerryError as exc:
            if exc.transient:
                raise TransientError(f"judging {artifact.request.source_label}: {exc}") from exc
            findings: tuple[Finding, ...] = (Finding(None, f"the candidate could not be read: {exc}"),)
        else:
            self.documents[index] = document
            findings = evaluate(self.policies, document, self.callback)
        verdict = Verdict(digest, findings, self.policy_hash)
        self.verdicts[index] = verdict
        return verdict
