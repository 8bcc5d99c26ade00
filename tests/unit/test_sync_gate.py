"""The policy gate at the seam between plan and transfer, on in-memory endpoints: the candidate
document, the seed story (BACKGROUND_COLOR must not be RED), refusals that leave the destination
untouched, cosign signatures, the config size cap, and transient read failures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ferry.copy import copy_artifacts, plan_copy
from ferry.errors import TransientError, TransientRegistryError
from ferry.jobs.gate import apply_gates
from ferry.oci.descriptor import Descriptor
from ferry.plan import CopyOptions, CopyPlan, CopyReport, CopyRequest
from ferry.sync.document import SCHEMA, candidate_document
from ferry.sync.policies import PolicyGate, Verdict, from_json, policies_hash
from tests.unit.gate_content import AMD64, ARM64, configured_image, cosign_signature, public_pem, sig_tag
from tests.unit.memory import Content, MemoryDestination, MemorySource, index, referrer

NOT_RED = [{"kind": "env", "id": "env-not-red", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}]


def request(repository: str, tag: str) -> CopyRequest:
    return CopyRequest(repository, tag, f"base/{repository}", (tag,))


def gated_copy(source: MemorySource, destination: MemoryDestination, req: CopyRequest, policies: Any,
               **gate: Any) -> tuple[CopyReport, PolicyGate]:
    policy_gate = PolicyGate(from_json(policies), source, **gate)
    options = CopyOptions(overwrite_tags=True, tag_settle_seconds=0)
    report = copy_artifacts(source, destination, [req], options,
                            review=lambda plan: apply_gates(plan, [policy_gate], options))
    return report, policy_gate


def walked(source: MemorySource, req: CopyRequest, options: CopyOptions | None = None) -> CopyPlan:
    plan = plan_copy(source, None, [req], options)
    assert not plan.artifacts[0].failed, plan.artifacts[0].result.error
    return plan


def judge(source: MemorySource, req: CopyRequest, policies: Any, **gate: Any) -> Verdict:
    return PolicyGate(from_json(policies), source, **gate).judge(walked(source, req), 0)


# --------------------------------------------------------------------------- the seed story


def node(color: str) -> Content:
    return configured_image(f"node-{color}", env=["PATH=/usr/local/bin", f"BACKGROUND_COLOR={color}"])


def test_seed_story_orange_and_green_pass_red_is_refused_and_green_stays() -> None:
    source, destination = MemorySource(), MemoryDestination()
    promoted = []
    for color in ("Orange", "Green"):
        image = source.push("node", node(color), "15-alpine")
        report, gate = gated_copy(source, destination, request("node", "15-alpine"), NOT_RED)
        assert report.ok and gate.verdicts[0].accepted, report.artifacts[0].error
        assert destination.tags["base/node"]["15-alpine"].digest == image.digest
        promoted.append(image.digest)
    red = source.push("node", node("Red"), "15-alpine")
    report, gate = gated_copy(source, destination, request("node", "15-alpine"), NOT_RED)
    assert report.artifacts[0].error == ("refused by policies: policy env-not-red: linux/amd64 config Env "
                                         "BACKGROUND_COLOR=Red matches forbidden value RED")
    assert not gate.verdicts[0].accepted and gate.verdicts[0].digest == red.digest
    assert destination.tags["base/node"]["15-alpine"].digest == promoted[-1]  # the last good one stays
    assert red.digest not in destination.manifests["base/node"]
    assert not set(red.blobs) & set(destination.blobs["base/node"])


def test_a_refusing_gate_leaves_the_destination_untouched() -> None:
    source, destination = MemorySource(), MemoryDestination()
    source.push("node", index(node("RED"), configured_image("arm", platform=ARM64)), "15-alpine")
    report, _ = gated_copy(source, destination, request("node", "15-alpine"), NOT_RED)
    assert not report.ok and "BACKGROUND_COLOR=RED matches forbidden value RED" in (report.artifacts[0].error or "")
    assert destination.untouched and report.blobs_uploaded == 0


def test_the_verdict_names_the_digest_and_the_policies_that_judged_it() -> None:
    source = MemorySource()
    green = source.push("node", node("Green"), "15-alpine")
    verdict = judge(source, request("node", "15-alpine"), NOT_RED)
    assert verdict.to_json() == {"digest": green.digest, "accepted": True, "reasons": [], "findings": [],
                                 "policiesHash": policies_hash(from_json(NOT_RED))}


# --------------------------------------------------------------------------- the document


@pytest.fixture
def app() -> tuple[MemorySource, Content, Content]:
    source = MemorySource()
    amd = configured_image("app-amd", env=["BACKGROUND_COLOR=Orange", "A=1", "A=2", "BARE"],
                           labels={"team": "web"}, platform=AMD64)
    arm = configured_image("app-arm", env=["BACKGROUND_COLOR=Green"], platform=ARM64)
    attestation = configured_image("app-att", platform={"os": "unknown", "architecture": "unknown"},
                                   descriptor_annotations={"vnd.docker.reference.type": "attestation-manifest"})
    root = source.push("app", index(amd, arm, attestation), "1.0")
    sbom = source.push("app", referrer(root, "application/spdx+json", b'{"spdx": 1}'))
    return source, root, sbom


def test_the_document_describes_an_index_its_configs_sizes_and_referrers(app: Any) -> None:
    source, root, sbom = app
    plan = walked(source, request("app", "1.0"))
    document = candidate_document(plan, 0, source)
    assert (document["schema"], document["digest"], document["root"]["mediaType"]) == (
        SCHEMA, root.digest, "application/vnd.oci.image.index.v1+json")
    assert document["source"] == {"repository": "app", "reference": "1.0"}
    assert [e["platform"] for e in document["index"]["manifests"]] == ["linux/amd64", "linux/arm64/v8",
                                                                      "unknown/unknown"]
    assert document["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert [m["attestation"] for m in document["manifests"]] == [False, False, True]
    amd = document["configs"][0]
    assert amd["env"] == {"BACKGROUND_COLOR": "Orange", "A": "2", "BARE": None}
    assert (amd["labels"], amd["os"], amd["architecture"]) == ({"team": "web"}, "linux", "amd64")
    assert amd["content"]["config"]["Env"][0] == "BACKGROUND_COLOR=Orange"
    assert document["configs"][1]["variant"] == "v8"
    assert [r["artifactType"] for r in document["referrers"]] == ["application/spdx+json"]
    assert document["referrers"][0]["subject"] == root.digest
    assert document["size"]["total"] == root.blob_bytes + sbom.blob_bytes
    assert document["size"]["image"] == root.blob_bytes
    assert document["size"]["image"] + document["size"]["referrers"] == document["size"]["total"]
    assert document["size"]["manifests"] == len(root.raw) + sum(len(r) for _, r in root.manifests[:-1]) + len(sbom.raw)
    layers = document["manifests"][1]["layers"]
    assert [layer["digest"] for layer in layers] == [d["digest"] for d in json.loads(root.manifests[1][1])["layers"]]
    assert document["signatures"] is None


def test_a_single_image_takes_its_platform_from_its_config_and_a_platform_filter_narrows_the_document(app: Any) -> None:
    source, _, _ = app
    single = source.push("single", configured_image("single", platform=ARM64), "1.0")
    document = candidate_document(walked(source, request("single", "1.0")), 0, source)
    assert document["index"] is None and document["digest"] == single.digest
    assert document["platforms"] == ["linux/arm64/v8"] and document["manifests"][0]["platform"] == "linux/arm64/v8"
    narrowed = walked(source, request("app", "1.0"), CopyOptions(platforms=frozenset({"linux/amd64"})))
    document = candidate_document(narrowed, 0, source)
    assert document["platforms"] == ["linux/amd64"] and len(document["configs"]) == 1


def test_a_config_past_the_cap_is_refused_unread() -> None:
    source, destination = MemorySource(), MemoryDestination()
    big = source.push("big", configured_image("big", config_padding=1024 * 1024), "1")
    config = next(d for d, b in big.blobs.items() if b.startswith(b'{"architecture"'))
    report, gate = gated_copy(source, destination, request("big", "1"), NOT_RED)
    reason = gate.verdicts[0].reasons[0]
    assert reason.startswith(f"the candidate could not be read: the image's config {config} is ")
    assert "more than the 1,048,576 bytes Ferry reads" in reason
    assert config not in source.blob_reads and destination.untouched and not report.ok


def test_a_smaller_cap_refuses_an_ordinary_config_and_a_larger_one_passes_it() -> None:
    source = MemorySource()
    source.push("node", node("Green"), "1")
    assert "more than the 100 bytes" in judge(source, request("node", "1"), NOT_RED, config_limit=100).reasons[0]
    assert judge(source, request("node", "1"), NOT_RED, config_limit=10_000).accepted


class FlakySource(MemorySource):
    """Blob reads fail as a registry's 503 would."""

    def open_blob(self, repository: str, descriptor: Descriptor) -> Any:
        raise TransientRegistryError("503 Service Unavailable", status=503)


def test_a_transient_read_failure_raises_rather_than_rejecting_the_digest() -> None:
    source = FlakySource()
    source.push("node", node("Green"), "1")
    gate = PolicyGate(from_json(NOT_RED), source)
    with pytest.raises(TransientError, match="503"):
        gate.review(walked(source, request("node", "1")))
    assert gate.verdicts == {}


# --------------------------------------------------------------------------- signatures


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def signed_world(signer: Any, *, via: str, signed_digest: str | None = None) -> tuple[MemorySource, Content]:
    source = MemorySource()
    image = source.push("app", node("Green"), "1.0")
    digest = signed_digest or image.digest
    if via == "referrer":
        source.push("app", cosign_signature(signer, digest, subject=image))
    elif via == "tag":
        source.push("app", cosign_signature(signer, digest), sig_tag(image.digest))
    return source, image


def signature_policy(key: Any) -> list[dict[str, Any]]:
    return [{"kind": "signature", "id": "signed", "publicKey": public_pem(key)}]


@pytest.mark.parametrize("via", ["referrer", "tag"])
def test_signed_with_the_right_key_passes(key: ec.EllipticCurvePrivateKey, via: str) -> None:
    source, image = signed_world(key, via=via)
    destination = MemoryDestination()
    report, gate = gated_copy(source, destination, request("app", "1.0"), signature_policy(key))
    assert report.ok and gate.verdicts[0].accepted, report.artifacts[0].error
    signatures = gate.documents[0]["signatures"]
    assert [s["via"] for s in signatures] == [via] and signatures[0]["claim"]["digest"] == image.digest
    assert destination.tags["base/app"]["1.0"].digest == image.digest


@pytest.mark.parametrize("signer", [lambda: rsa.generate_private_key(65537, 2048), ed25519.Ed25519PrivateKey.generate])
def test_rsa_and_ed25519_signatures_verify(signer: Any) -> None:
    private = signer()
    source, _ = signed_world(private, via="tag")
    assert judge(source, request("app", "1.0"), signature_policy(private)).accepted
    assert not judge(source, request("app", "1.0"), signature_policy(signer())).accepted


@pytest.mark.parametrize("via", ["referrer", "tag"])
def test_a_signature_by_another_key_is_refused(key: ec.EllipticCurvePrivateKey, via: str) -> None:
    source, _ = signed_world(ec.generate_private_key(ec.SECP256R1()), via=via)
    destination = MemoryDestination()
    report, _ = gated_copy(source, destination, request("app", "1.0"), signature_policy(key))
    error = report.artifacts[0].error or ""
    assert error.startswith("refused by policies: policy signed: none of the 1 cosign signature")
    assert "does not verify with this key" in error
    assert destination.untouched


def test_an_unsigned_image_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    source, image = signed_world(key, via="none")
    verdict = judge(source, request("app", "1.0"), signature_policy(key))
    assert verdict.reasons == [f"policy signed: no cosign signature of {image.digest} was found (looked at its "
                               f"referrers and the {sig_tag(image.digest)} tag); a signature by key sha256:"
                               + verdict.reasons[0].split("by key sha256:")[1]]
    assert verdict.reasons[0].endswith(" is required")


@pytest.mark.parametrize("via", ["referrer", "tag"])
def test_a_valid_signature_of_another_digest_is_refused(key: ec.EllipticCurvePrivateKey, via: str) -> None:
    other = "sha256:" + "ab" * 32
    source, _ = signed_world(key, via=via, signed_digest=other)
    verdict = judge(source, request("app", "1.0"), signature_policy(key))
    assert f"a valid signature, but of {other}, not of this candidate" in verdict.reasons[0]


def test_a_corrupt_signature_is_refused_and_one_good_signature_among_bad_ones_passes(key: Any) -> None:
    source = MemorySource()
    image = source.push("app", node("Green"), "1.0")
    source.push("app", cosign_signature(key, image.digest, subject=image, signature=b"\x30\x02garbage"))
    assert "does not verify with this key" in judge(source, request("app", "1.0"), signature_policy(key)).reasons[0]
    source.push("app", cosign_signature(key, image.digest), sig_tag(image.digest))
    assert judge(source, request("app", "1.0"), signature_policy(key)).accepted


def test_sig_tags_are_read_through_the_given_reader(key: ec.EllipticCurvePrivateKey) -> None:
    source, image = signed_world(key, via="tag")
    asked = []

    def nothing(repository: str, digest: str) -> None:
        asked.append((repository, digest))
        return None

    verdict = judge(source, request("app", "1.0"), signature_policy(key), signature_tag_reader=nothing)
    assert asked == [("app", image.digest)] and "no cosign signature" in verdict.reasons[0]
