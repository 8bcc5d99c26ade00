"""Tag lists read page by page: the fake pages with ``n``/``last`` and a relative ``Link`` header,
distribution serves one page. (Links that loop, never end or leave the registry are refused in
tests/faults/test_registry_bounds.py.)"""

from __future__ import annotations

from ferry.registry.client import RegistryClient
from tests.harness import content as c

TAGS = [f"t{i:02d}" for i in range(25)]


def test_list_tags_follows_link_pagination(fake_registry):
    # distribution 2.8 ignores `n` on tags/list (one page, always), so the paging itself is
    # checked against the fake, which pages with `n`/`last` and a relative Link header.
    image = c.oci_image([c.random_layer(20_000, 17)], seed=17)
    fake_registry.add_manifest("paged/img", image.media_type, image.raw, tags=TAGS)
    with RegistryClient(fake_registry.host) as client:
        tags = client.list_tags("paged/img", page_size=10)
    assert tags == TAGS  # in page order, none twice, none missing
    assert fake_registry.count("/v2/paged/img/tags/list", "GET") == 3  # pages of 10, 10 and 5


def test_list_tags_of_25_tags_from_distribution(registry, content, unique_repo):
    manifest = content["helm"]
    c.push(registry.url, unique_repo, manifest, tag=TAGS[0])
    with c.registry_client(registry.url) as http:
        for tag in TAGS[1:]:
            response = http.put(f"/v2/{unique_repo}/manifests/{tag}", content=manifest.raw,
                                headers={"Content-Type": manifest.media_type})
            assert response.status_code == 201
    with RegistryClient(registry.host) as client:
        tags = client.list_tags(unique_repo, page_size=10)
    assert sorted(tags) == TAGS and len(tags) == 25


def test_list_tags_of_unknown_repository_is_empty(registry):
    with RegistryClient(registry.host) as client:
        assert client.list_tags("no/such/repository", page_size=10) == []
