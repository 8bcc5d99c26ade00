"""Referrers read through the OCI 1.1 referrers API (the fake registry has it; distribution does not)."""

from __future__ import annotations

import json

from tests.harness import content as c
from tests.helpers import run_ferry


def test_referrers_from_api_source_reach_fallback_target(fake_registry, registry_b, content, capsys):
    fake_registry.add_content("api/app", content["multiarch"], tags=["v1"])
    fake_registry.add_content("api/app", content["signature"])
    fake_registry.add_content("api/app", content["sbom"])
    result = run_ferry(capsys, "copy", f"{fake_registry.host}/api/app:v1", f"{registry_b.host}/viaapi/app:v1",
                       "--json")
    assert result.code == 0, result.err + result.out
    assert result.json()["artifacts"][0]["referrers"] == 2
    # The referrers API was asked, and no fallback tag was read from the source.
    assert fake_registry.count("/referrers/") >= 1
    assert fake_registry.count(c.referrers_tag(content["multiarch"].digest)) == 0
    _, raw = c.get_manifest(registry_b.url, "viaapi/app", c.referrers_tag(content["multiarch"].digest))
    assert {d["digest"] for d in json.loads(raw)["manifests"]} == {content["signature"].digest,
                                                                   content["sbom"].digest}
