"""A tick over 100 unchanged upstream tags costs the tag list and one HEAD per tag: no manifest
GET, no blob, no byte moved, nothing promoted or notified again."""

from __future__ import annotations

import json
import time

from ferry.sync.definition import parse_sync
from ferry.sync.policies import policies_hash
from tests.harness import content as c
from tests.harness.faultproxy import FaultProxy
from tests.helpers import run_ferry

TAGS = [f"1.0.{i}" for i in range(100)]


def test_a_hundred_unchanged_tags_cost_a_hundred_heads(registry, registry_b, tmp_path, capsys):
    image = c.oci_image([c.random_layer(2_000, 4242)], env=["BACKGROUND_COLOR=Blue"], seed=42)
    for tag in TAGS:
        c.push(registry.url, "library/many", image, tag=tag)
    upstream = FaultProxy(registry.host)
    try:
        sync_file = tmp_path / "many.json"
        sync_file.write_text(json.dumps({"name": "many-tags", "properties": {
            "source": {"registryUri": upstream.host, "repository": "library/many"},
            "tags": {"semver": ">=1.0.0 <2"},
            "target": {"registryUri": registry_b.host, "repository": "mirror/many"},
            "policies": [{"kind": "env", "name": "BACKGROUND_COLOR", "forbid": ["RED"]}]}}))
        # The state an earlier tick left: every tag evaluated at this digest under these policies.
        definition = json.loads(sync_file.read_text())
        policies = policies_hash(parse_sync("many-tags", definition).policies)
        (tmp_path / "many.state.json").write_text(json.dumps({"tags": {
            tag: {"digest": image.digest, "verdict": "promoted", "policies": policies} for tag in TAGS}}))
        upstream.reset_counters()
        started = time.monotonic()
        second = run_ferry(capsys, "sync", str(sync_file), "--once", "--run-id", "second", "--json")
        seconds = time.monotonic() - started
        assert second.code == 0, second.err
        tags = second.json()["tags"]
        assert {t["status"] for t in tags} == {"unchanged"} and sum(t["bytes_moved"] for t in tags) == 0
        by_kind: dict[str, int] = {}
        for key, n in upstream.requests.items():
            kind = key.split()[0] + (" manifest" if "/manifests/" in key else " tags" if "/tags/" in key else " other")
            by_kind[kind] = by_kind.get(kind, 0) + n
        assert by_kind == {"HEAD manifest": 100, "GET tags": 1}, by_kind
        assert upstream.body_bytes["PUT"] == 0 and upstream.body_bytes["PATCH"] == 0
        print(f"\n100 unchanged tags: requests {by_kind}, 0 bytes moved, {seconds:.2f} s")
    finally:
        upstream.stop()
