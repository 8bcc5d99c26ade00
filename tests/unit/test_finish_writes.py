"""Pure tests of what finishing a run writes (CopyPlan.finish_writes) and of name checks.

Each (repository, digest) once, whatever the number of artifacts that reach it; a manifest in a
later wave than its children and its subject, whatever order the artifacts list them in; tags in
their root's wave; referrer records once.
"""

from __future__ import annotations

import pytest

from ferry.oci.descriptor import Descriptor
from ferry.plan import ArtifactPlan, ArtifactResult, CopyPlan, CopyRequest
from tests.harness import content as c

SAMPLES = c.sample_set(seed=3)


def descriptor(manifest: c.Manifest) -> Descriptor:
    return Descriptor.for_bytes(manifest.media_type, manifest.raw)


def artifact(target: str, tags: tuple[str, ...], root: c.Manifest, manifests: list[c.Manifest],
             referrers: list[tuple[c.Manifest, c.Manifest]] = ()) -> ArtifactPlan:
    request = CopyRequest("src", root.digest, target, tags)
    return ArtifactPlan(request=request, result=ArtifactResult(request.source_label, request.target_label),
                        root=descriptor(root), root_raw=root.raw,
                        manifests=[(descriptor(m), m.raw) for m in manifests],
                        referrer_links=[(descriptor(s), descriptor(r)) for s, r in referrers])


def index_with_referrers(target: str, tag: str) -> ArtifactPlan:
    multiarch, signature = SAMPLES["multiarch"], SAMPLES["signature"]
    return artifact(target, (tag,), multiarch, [*multiarch.children, multiarch, signature],
                    [(multiarch, signature)])


def waves_of(writes: list[list]) -> list[set[str]]:
    return [{w.descriptor.digest for w in wave} for wave in writes]


def test_five_tags_and_a_referrer_write_each_manifest_once_children_first():
    multiarch, signature = SAMPLES["multiarch"], SAMPLES["signature"]
    # The referrer alone comes first: its subject is only listed by the artifacts after it.
    plans = [artifact("t/repo", (), signature, [signature])]
    plans += [index_with_referrers("t/repo", f"t{n}") for n in range(5)]
    writes = CopyPlan(plans).finish_writes()
    assert waves_of(writes.manifests) == [{m.digest for m in multiarch.children}, {multiarch.digest},
                                          {signature.digest}]
    assert [len(w.owners) for w in writes.manifests[1]] == [5]
    assert len(writes.manifests[2][0].owners) == 6
    assert [(w.subject.digest, w.descriptor.digest) for w in writes.referrers] == [(multiarch.digest,
                                                                                    signature.digest)]
    assert [[w.tag for w in wave] for wave in writes.tags] == [[f"t{n}" for n in range(5)]]


def test_each_repository_gets_its_own_writes_and_a_childs_tag_comes_before_its_index():
    multiarch = SAMPLES["multiarch"]
    child = multiarch.children[0]
    plans = [index_with_referrers("t/a", "v1"), index_with_referrers("t/b", "v1"),
             artifact("t/a", ("amd64",), child, [child])]
    writes = CopyPlan(plans).finish_writes()
    per_repo = sorted((w.repository, w.descriptor.digest) for wave in writes.manifests for w in wave)
    assert len(per_repo) == len(set(per_repo)) == 2 * 4
    assert [sorted((w.repository, w.tag) for w in wave) for wave in writes.tags] == [
        [("t/a", "amd64")], [("t/a", "v1"), ("t/b", "v1")]]


def test_failed_artifacts_write_nothing_and_write_plan_follows_the_waves():
    plans = [index_with_referrers("t/a", "v1"), artifact("t/a", ("h",), SAMPLES["helm"], [SAMPLES["helm"]])]
    plans[0].fail("boom")
    plan = CopyPlan(plans)
    writes = plan.finish_writes()
    assert waves_of(writes.manifests) == [{SAMPLES["helm"].digest}] and writes.referrers == []
    assert [d.digest for d, _ in plan.write_plan().manifests] == [SAMPLES["helm"].digest]


def test_one_tag_for_two_manifests_fails_both_artifacts():
    plans = [artifact("t/a", ("v1",), SAMPLES["helm"], [SAMPLES["helm"]]),
             artifact("t/a", ("v1",), SAMPLES["docker"], [SAMPLES["docker"]]),
             artifact("t/b", ("v1",), SAMPLES["docker"], [SAMPLES["docker"]]),
             artifact("t/b", ("v1",), SAMPLES["docker"], [SAMPLES["docker"]])]
    CopyPlan(plans).fail_tag_collisions()
    assert [p.failed for p in plans] == [True, True, False, False]
    assert "t/a:v1 would name different manifests in one run" in (plans[0].result.error or "")


@pytest.mark.parametrize("tag", ["v1", "1.0_rc-2", "_", "A" * 128])
def test_valid_tags_pass(tag):
    assert CopyRequest("src", "v1", "t/repo", (tag,)).invalid_name() is None


@pytest.mark.parametrize("tag", ["", "v1\n", "caf\u00e9", "\u0661", ".x", "-x", "A" * 129, "a/b", "a:b", "a b",
                                 "evil?x=1", "v2#frag"])
def test_invalid_tags_are_named(tag):
    assert f"target tag {tag!r} is not a valid tag" in (CopyRequest("src", "v1", "t/repo", (tag,)).invalid_name()
                                                       or "")


@pytest.mark.parametrize("repository", ["", "Upper/case", "t/repo\n", "t//x", "t/x/", "a" * 256])
def test_invalid_repositories_are_named(repository):
    problem = CopyRequest("src", "v1", repository, ("v1",)).invalid_name()
    assert problem == f"target repository {repository!r} is not a valid repository name"


def test_a_registry_tag_writes_an_unreferenced_root_and_its_other_tags_wait_a_wave():
    """tag_stores_manifest: helm (tagged twice, referenced by nothing) is written by its first tag,
    not by digest; its second tag follows in the next wave. The multiarch index is a referrer's
    subject and the signature an untagged artifact: both are still written by digest."""
    helm, multiarch, signature = SAMPLES["helm"], SAMPLES["multiarch"], SAMPLES["signature"]
    plans = [artifact("t/a", ("h1", "h2"), helm, [helm]), index_with_referrers("t/a", "v1"),
             artifact("t/a", (), signature, [signature])]
    plain, lean = CopyPlan(plans).finish_writes(), CopyPlan(plans).finish_writes(tag_stores_manifest=True)
    assert helm.digest in set().union(*waves_of(plain.manifests))
    assert helm.digest not in set().union(*waves_of(lean.manifests))
    assert waves_of(lean.manifests) == [w - {helm.digest} for w in waves_of(plain.manifests) if w - {helm.digest}]
    assert {multiarch.digest, signature.digest} <= set().union(*waves_of(lean.manifests))
    tag_waves = [[w.tag for w in wave] for wave in lean.tags]
    first, second = (next(n for n, wave in enumerate(tag_waves) if tag in wave) for tag in ("h1", "h2"))
    assert second == first + 1, tag_waves
