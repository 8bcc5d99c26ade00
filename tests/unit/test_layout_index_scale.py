"""``LayoutIndex`` names, renames and finds entries without scanning them all (issue 11: laying out
an archive of 3000 artifacts spent 69% of its time rescanning the entry list per name)."""

from __future__ import annotations

import hashlib

import pytest

from ferry.oci import mediatypes as mt
from ferry.oci.descriptor import Descriptor
from ferry.oci.layout import LayoutIndex


def descriptor(n: int) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()
    return Descriptor(mt.OCI_MANIFEST, digest, n, {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": n})


def test_naming_n_entries_reads_each_entry_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    annotations = Descriptor.annotations
    monkeypatch.setattr(Descriptor, "annotations", property(lambda self: reads.append(1) or annotations.fget(self)))
    index = LayoutIndex()
    count = 2000
    for n in range(count):
        index.set(f"repo{n % 50}", f"t{n}", descriptor(n))
        assert index.find(f"repo{n % 50}", f"t{n}") is not None
    assert len(reads) <= 3 * count  # a scan per name was count**2 / 2 reads
    assert len(index.entries) == count


def test_renames_replace_and_move_to_the_end_and_lookups_follow() -> None:
    index = LayoutIndex()
    index.set("a", "v1", descriptor(1))
    index.set("a", "v2", descriptor(2))
    index.set_name("a@x", descriptor(3))
    index.set("a", "v1", descriptor(4))  # rename: v1 now names 4, and comes last
    assert [e.size for e in index.entries] == [2, 3, 4]
    assert index.find("a", "v1") == descriptor(4) and index.find_digest(descriptor(1).digest) is None
    assert index.find_digest(descriptor(3).digest) == descriptor(3)
    foreign = LayoutIndex.parse(index.to_bytes().replace(b'"a:v2"', b'"v2"'))
    assert foreign.find("b", "v2") == descriptor(2)  # a bare tag name (another tool's layout)
    assert foreign.tags("a") == ["v1"] and foreign.names() == ["v2", "a@x", "a:v1"]
