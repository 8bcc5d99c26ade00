"""Gate policies as data: each kind passing and refusing on a candidate document, Rego in-process,
bad JSON named by its path, the JSON round trip and the policies' hash."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ferry.copy import plan_copy
from ferry.errors import UsageError
from ferry.plan import CopyOptions, CopyRequest
from ferry.sync.document import candidate_document
from ferry.sync.kinds import Policy
from ferry.sync.policies import evaluate, from_json, policies_hash, to_json
from tests.unit.gate_content import AMD64, ARM64, configured_image, public_pem
from tests.unit.memory import MemorySource, index, referrer

SOURCE_LABEL = "org.opencontainers.image.source"


def document_of(repository: str, *, referrers: bool = True) -> dict[str, Any]:
    source = MemorySource()
    amd = configured_image("amd", env=["BACKGROUND_COLOR=Orange", "PATH=/bin"], platform=AMD64,
                           labels={SOURCE_LABEL: "https://example/app"}, annotations={"stage": "prod"})
    arm = configured_image("arm", env=["BACKGROUND_COLOR=Green", "PATH=/bin", "DEBUG=1"], platform=ARM64)
    attestation = configured_image("att", platform={"os": "unknown", "architecture": "unknown"},
                                   descriptor_annotations={"vnd.docker.reference.type": "attestation-manifest"})
    app = source.push("app", index(amd, arm, attestation), "1")
    source.push("app", referrer(app, "application/spdx+json", b"{}" * 50))
    source.push("single", configured_image("single", annotations={"org.opencontainers.image.version": "1.0"},
                                           labels={SOURCE_LABEL: "https://example/single"}), "1")
    options = CopyOptions(include_referrers=referrers)
    plan = plan_copy(source, None, [CopyRequest(repository, "1", "mirror/" + repository, ("1",))], options)
    return candidate_document(plan, 0, source, signatures=True)


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    return document_of("app")


def reasons(policy: dict[str, Any], document: dict[str, Any]) -> list[str]:
    return [str(f) for f in evaluate(from_json([policy]), document)]


# --------------------------------------------------------------------------- each kind, passing and refusing


def test_env_forbid_is_case_insensitive_unless_asked(app: dict[str, Any]) -> None:
    assert reasons({"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}, app) == []
    assert reasons({"kind": "env", "id": "no-orange", "name": "BACKGROUND_COLOR", "forbid": ["red", "ORANGE"]},
                   app) == ["policy no-orange: linux/amd64 config Env BACKGROUND_COLOR=Orange matches forbidden "
                            "value ORANGE"]
    assert reasons({"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["ORANGE"], "caseSensitive": True},
                   app) == []


def test_env_require_and_present(app: dict[str, Any]) -> None:
    assert reasons({"kind": "env", "name": "BACKGROUND_COLOR", "require": ["orange", "green"]}, app) == []
    assert reasons({"kind": "env", "name": "BACKGROUND_COLOR", "require": ["Blue"]}, app) == [
        "policy env-BACKGROUND_COLOR: linux/amd64 config Env has BACKGROUND_COLOR=Orange; it must be one of Blue",
        "policy env-BACKGROUND_COLOR: linux/arm64/v8 config Env has BACKGROUND_COLOR=Green; it must be one of Blue"]
    assert reasons({"kind": "env", "name": "PATH", "present": True}, app) == []
    assert reasons({"kind": "env", "name": "HOME", "present": True}, app) == [
        f"policy env-HOME: {p} config Env does not set HOME, which is required"
        for p in ("linux/amd64", "linux/arm64/v8")]
    assert reasons({"kind": "env", "name": "DEBUG", "present": False}, app) == [
        "policy env-DEBUG: linux/arm64/v8 config Env sets DEBUG=1; DEBUG must not be set"]


def test_required_platforms(app: dict[str, Any]) -> None:
    assert reasons({"kind": "platforms", "require": ["linux/amd64", "linux/arm64"]}, app) == []
    assert reasons({"kind": "platforms", "require": ["linux/amd64", "linux/s390x"]}, app) == [
        "policy platforms: platform linux/s390x is missing (the candidate has linux/amd64, linux/arm64/v8)"]


def test_maximum_size_of_everything_or_of_the_image(app: dict[str, Any]) -> None:
    total, image = app["size"]["total"], app["size"]["image"]
    assert total > image > 0
    assert reasons({"kind": "max-size", "bytes": total}, app) == []
    assert reasons({"kind": "max-size", "bytes": image, "of": "image"}, app) == []
    assert reasons({"kind": "max-size", "bytes": image}, app) == [
        f"policy max-size: its blobs, referrers' included, take {total:,} bytes, more than the maximum {image:,} bytes"]
    assert reasons({"kind": "max-size", "bytes": 3 * 1024**2, "of": "image"}, {**app, "size": {"image": 5 * 1024**2}}) \
        == ["policy max-size: its image (configs and layers) take 5.0 MiB (5,242,880 bytes), more than the maximum "
            "3.0 MiB (3,145,728 bytes)"]


def test_required_labels_on_every_image_config(app: dict[str, Any]) -> None:
    assert reasons({"kind": "label", "key": SOURCE_LABEL}, document_of("single")) == []
    assert reasons({"kind": "label", "key": SOURCE_LABEL}, app) == [
        f"policy label-{SOURCE_LABEL}: linux/arm64/v8 config has no label {SOURCE_LABEL}; {SOURCE_LABEL} is required"]
    assert reasons({"kind": "label", "id": "src", "key": SOURCE_LABEL, "value": "https://example/app"},
                   document_of("single")) == [
        f"policy src: linux/amd64 config has label {SOURCE_LABEL}=https://example/single, not the required "
        "https://example/app"]


def test_required_annotations_on_the_root_or_on_each_manifest(app: dict[str, Any]) -> None:
    single = document_of("single")
    version = "org.opencontainers.image.version"
    assert reasons({"kind": "annotation", "key": version, "value": "1.0"}, single) == []
    assert reasons({"kind": "annotation", "key": version}, app) == [
        f"policy annotation-{version}: the root index {app['digest']} has no annotation {version}; "
        f"{version} is required"]
    found = reasons({"kind": "annotation", "key": "stage", "value": "prod", "on": "manifests"}, app)
    assert len(found) == 1 and found[0].startswith("policy annotation-stage: linux/arm64/v8 manifest sha256:")


def test_denied_layer_digests(app: dict[str, Any]) -> None:
    arm_layer = app["manifests"][1]["layers"][1]["digest"]
    assert reasons({"kind": "denied-layers", "digests": ["sha256:" + "0" * 64]}, app) == []
    assert reasons({"kind": "denied-layers", "digests": [arm_layer]}, app) == [
        f"policy denied-layers: linux/arm64/v8 layer 2 of 2 is {arm_layer}, a denied layer"]


def test_a_required_referrer_must_travel_with_it(app: dict[str, Any]) -> None:
    assert reasons({"kind": "referrer", "artifactType": "application/spdx+json"}, app) == []
    assert reasons({"kind": "referrer", "id": "sbom", "artifactType": "application/vnd.cyclonedx+json"}, app) == [
        "policy sbom: no referrer of artifactType application/vnd.cyclonedx+json travels with it; "
        "it has application/spdx+json"]
    assert reasons({"kind": "referrer", "id": "sbom", "artifactType": "application/spdx+json"},
                   document_of("app", referrers=False)) == [
        "policy sbom: no referrer of artifactType application/spdx+json travels with it; it has no referrers "
        "(were they left behind?)"]


def test_an_external_validator_parses_with_its_timeout() -> None:
    policy = from_json([{"kind": "external", "url": "https://validator.example/check", "timeoutSeconds": 30}])[0]
    assert policy.to_json() == {"kind": "external", "id": "external",
                                  "url": "https://validator.example/check", "timeoutSeconds": 30}


def test_a_policy_that_breaks_refuses(app: dict[str, Any]) -> None:
    class Broken(Policy):
        def check(self, document: dict[str, Any]) -> list[str]:
            raise KeyError("configs")

    assert [str(f) for f in evaluate([Broken("broken")], app)] == ["policy broken: could not be evaluated: 'configs'"]


# --------------------------------------------------------------------------- Rego

REGO_NOT_RED = """package ferry.gate
import rego.v1

deny contains msg if {
    some config in input.configs
    upper(config.env.BACKGROUND_COLOR) == "RED"
    msg := sprintf("%s sets BACKGROUND_COLOR=%s", [config.platform, config.env.BACKGROUND_COLOR])
}
"""


def test_rego_denies_with_its_own_reasons_and_allows_otherwise(app: dict[str, Any]) -> None:
    assert reasons({"kind": "rego", "module": REGO_NOT_RED}, app) == []
    red = copy.deepcopy(app)
    red["configs"][1]["env"]["BACKGROUND_COLOR"] = "Red"
    assert reasons({"kind": "rego", "id": "not-red", "module": REGO_NOT_RED}, red) == [
        "policy not-red: linux/arm64/v8 sets BACKGROUND_COLOR=Red"]


def test_rego_sees_the_whole_document_and_its_reasons_survive_quotes_and_backslashes(app: dict[str, Any]) -> None:
    module = ('package p\nimport rego.v1\n'
              'deny contains sprintf("%d platforms, first %s", [count(input.platforms), input.platforms[0]]) if true\n'
              'deny contains input.source.repository if { input.source.repository == "a\\\\b \\"q\\" é" }\n'
              'deny contains "signatures seen" if { is_array(input.signatures) }\n')
    document = {**app, "source": {"repository": 'a\\b "q" é', "reference": "1"}}
    assert reasons({"kind": "rego", "id": "r", "module": module}, document) == [
        'policy r: 2 platforms, first linux/amd64', 'policy r: a\\b "q" é', "policy r: signatures seen"]


def test_rego_deny_values_must_be_strings_and_evaluation_failures_refuse(app: dict[str, Any]) -> None:
    numbers = 'package p\nimport rego.v1\ndeny contains 5 if { count(input.configs) > 0 }\n'
    assert reasons({"kind": "rego", "id": "r", "module": numbers}, app) == [
        "policy r: could not be evaluated: data.p.deny holds 1 value(s) that are not strings; "
        "each reason must be a string"]
    conflict = ('package p\nimport rego.v1\n'
                'x := 1 if { count(input.configs) > 0 }\nx := 2 if { count(input.configs) > 0 }\n'
                'deny contains "never" if { x == 3 }\n')
    found = reasons({"kind": "rego", "id": "r", "module": conflict}, app)
    assert len(found) == 1 and found[0].startswith("policy r: could not be evaluated: evaluation failed")


# --------------------------------------------------------------------------- bad JSON names its path

KEY = public_pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize(("policies", "message"), [
    ({"kind": "env"}, "policies: must be a JSON list of policies"),
    (["env"], "policies[0]: must be a JSON object with a 'kind'"),
    ([{}], "policies[0].kind: required; one of env, platforms"),
    ([{"kind": "nope"}], "policies[0].kind: 'nope' is not a kind of policy"),
    ([{"kind": "env", "name": "X", "forbid": "RED"}], "policies[0].forbid: must be a list of strings"),
    ([{"kind": "env", "name": "X", "forbid": ["RED", 1]}], "policies[0].forbid[1]: must be a non-empty string"),
    ([{"kind": "env", "forbid": ["RED"]}], "policies[0].name: required: a non-empty string"),
    ([{"kind": "env", "name": "X"}], "policies[0]: an env policy needs 'forbid', 'require' or 'present'"),
    ([{"kind": "env", "name": "X", "present": "yes"}], "policies[0].present: must be true or false"),
    ([{"kind": "env", "name": "X", "forbid": ["A"], "forbidd": []}], "policies[0]: unknown field(s) forbidd"),
    ([{"kind": "platforms", "require": []}], "policies[0].require: required: a non-empty list of strings"),
    ([{"kind": "platforms", "require": ["linux"]}], "policies[0].require[0]: 'linux' is not os/architecture"),
    ([{"kind": "max-size", "bytes": "10"}], "policies[0].bytes: required: a whole number of bytes"),
    ([{"kind": "max-size", "bytes": 10, "of": "all"}], "policies[0].of: 'all' is not one of total, image"),
    ([{"kind": "annotation", "key": "k", "on": "index"}], "policies[0].on: 'index' is not one of root, manifests"),
    ([{"kind": "denied-layers", "digests": ["sha256:abc"]}], "policies[0].digests[0]: 'sha256:abc' is not a digest"),
    ([{"kind": "referrer"}], "policies[0].artifactType: required"),
    ([{"kind": "signature", "publicKey": "not a key"}], "policies[0].publicKey: not a PEM public key"),
    ([{"kind": "rego", "module": "package p\nimport rego.v1\n\ndeny contains m if {\n  m = = 3\n}\n"}],
     "policies[0].module: not a usable Rego policy: line 5: Invalid assignment operator"),
    ([{"kind": "rego", "module": "package p\nimport rego.v1\nallow := true\n"}],
     "policies[0].module: not a usable Rego policy: package p defines no rule 'deny'"),
    ([{"kind": "rego", "module": "deny := 1"}], "policies[0].module: not a usable Rego policy: the module has no"),
    ([{"kind": "external", "url": "ftp://x"}], "policies[0].url: must be an http(s) URL"),
    ([{"kind": "external", "url": "https://x", "timeoutSeconds": 0}], "policies[0].timeoutSeconds: must be"),
    ([{"kind": "label", "key": "a", "id": "has space"}], "policies[0].id: must be 1 to 100 characters"),
    ([{"kind": "label", "key": "a"}, {"kind": "label", "key": "a"}],
     "policies[1].id: 'label-a' is already the id of policies[0]; give each policy an id of its own"),
])
def test_bad_policy_json_is_a_usage_error_naming_the_path(policies: Any, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        from_json(policies)
    assert str(caught.value).startswith(message), str(caught.value)


# --------------------------------------------------------------------------- round trip and hash

ALL_KINDS: list[dict[str, Any]] = [
    {"kind": "env", "id": "env-not-red", "name": "BACKGROUND_COLOR", "forbid": ["RED"]},
    {"kind": "platforms", "require": ["linux/amd64"]},
    {"kind": "max-size", "bytes": 1000},
    {"kind": "label", "key": "a", "value": "b"},
    {"kind": "annotation", "key": "c", "on": "manifests"},
    {"kind": "denied-layers", "digests": ["sha256:" + "1" * 64]},
    {"kind": "referrer", "artifactType": "application/spdx+json"},
    {"kind": "signature", "publicKey": KEY},
    {"kind": "rego", "module": REGO_NOT_RED},
    {"kind": "external", "url": "https://validator.example/check"},
]


def test_the_json_round_trip_keeps_every_kind() -> None:
    policies = from_json(ALL_KINDS)
    assert [p.kind for p in policies] == [p["kind"] for p in ALL_KINDS]
    assert from_json(to_json(policies)) == policies
    assert to_json(from_json(to_json(policies))) == to_json(policies)
    assert to_json(policies)[0] == {"kind": "env", "id": "env-not-red", "name": "BACKGROUND_COLOR", "forbid": ["RED"],
                                    "require": [], "present": None, "caseSensitive": False}


def test_policies_hash_is_stable_however_the_same_rules_are_written() -> None:
    digest = policies_hash(from_json(ALL_KINDS))
    assert digest.startswith("sha256:") and len(digest) == 71
    reordered = [dict(reversed(list(p.items()))) for p in reversed(ALL_KINDS)]
    assert policies_hash(from_json(reordered)) == digest
    assert policies_hash(from_json(to_json(from_json(ALL_KINDS)))) == digest


@pytest.mark.parametrize(("index", "change"), [
    (0, {"forbid": ["red"]}), (0, {"caseSensitive": True}), (0, {"id": "other"}), (1, {"require": ["linux/arm64"]}),
    (2, {"bytes": 1001}), (4, {"on": "root"}), (7, {"publicKey": public_pem(ec.generate_private_key(ec.SECP256R1()))}),
    (8, {"module": REGO_NOT_RED.replace('"RED"', '"BLUE"')}), (9, {"timeoutSeconds": 60}),
])
def test_policies_hash_changes_with_any_rule(index: int, change: dict[str, Any]) -> None:
    changed = copy.deepcopy(ALL_KINDS)
    changed[index].update(change)
    assert policies_hash(from_json(changed)) != policies_hash(from_json(ALL_KINDS))
    assert policies_hash(from_json(ALL_KINDS[:-1])) != policies_hash(from_json(ALL_KINDS))


def test_a_sync_names_at_most_four_external_validators():
    many = [{"kind": "external", "id": f"v{i}", "url": f"https://validator{i}.example/check"} for i in range(5)]
    assert len(from_json(many[:4])) == 4
    with pytest.raises(UsageError, match=r"policies\[4\]: at most 4 external validators"):
        from_json(many)
