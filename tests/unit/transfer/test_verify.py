"""Verification on in-memory stores: each depth finds what it promises, and reports it by its name."""

from __future__ import annotations

import dataclasses

import pytest

from hdh_migrate.errors import ConfigError
from hdh_migrate.stores.memory import MemoryServer
from hdh_migrate.transfer.verify import Verifier, find_extras

from .conftest import PART, Pair, payload


def _problems(counts) -> dict[str, str]:
    return {p["name"]: p["problem"] for p in counts.problems}


@pytest.fixture
def copied(pair: Pair) -> Pair:
    for i in range(4):
        pair.put(f"f{i}", payload(1000 + i, seed=i))
    pair.put("big", payload(2 * PART + 7, seed=9), md5=False)
    assert pair.copy(part_size=PART).copied == 5
    return pair


@pytest.mark.parametrize(("depth", "reads"), [("quick", 0), ("full", 1), ("both", 2)])
def test_a_clean_copy_matches_at_every_depth(copied: Pair, depth: str, reads: int) -> None:
    v = copied.verify(depth)
    assert v.ok and (v.checked, v.matched) == (5, 5)
    assert v.bytes_read == reads * sum(o.size for o in copied.listing())


def test_bit_rot_is_found_by_full_and_not_by_quick(copied: Pair) -> None:
    copied.s3.rot("dst", "copy/f2", offset=500)
    copied.s3.rot("dst", "copy/big", offset=PART + 1)
    assert copied.verify("quick").ok  # size, ETag and metadata are intact
    full = copied.verify("full")
    assert (full.matched, full.differs) == (3, 2)
    assert _problems(full) == {"data/f2": "hash_differs", "data/big": "hash_differs"}


def test_a_source_that_rots_after_the_copy_is_found_by_both_only(copied: Pair) -> None:
    copied.azure.rot("src", "data/f1")
    assert copied.verify("full").ok
    assert _problems(copied.verify("both")) == {"data/f1": "source_hash_differs"}


def test_missing_stale_and_extra_objects_are_reported(copied: Pair) -> None:
    copied.dest.delete("copy/f0")
    copied.put("f3", b"a new version at the source")
    copied.dest.put("copy/stray", b"not from the source")
    copied.dest.put("_hdh-audit/report.json", b"{}")  # hdh-migrate's own document: never extra
    for depth in ("quick", "full"):
        v = copied.verify(depth)
        assert _problems(v) == {"data/f0": "missing", "data/f3": "stale"}
        assert (v.missing, v.differs, v.ok) == (1, 1, False)
    assert list(find_extras(copied.dest, copied.dst, copied.src, copied.listing())) == ["copy/stray"]


def test_an_object_rewritten_at_the_destination_is_found_by_its_etag(copied: Pair) -> None:
    head = copied.dest_head("f1")
    copied.dest.put("copy/f1", payload(head.size, seed=77), metadata=head.metadata)  # provenance copied over
    assert _problems(copied.verify("quick")) == {"data/f1": "etag_differs"}


def test_objects_not_written_by_hdh_migrate_have_no_hash(copied: Pair) -> None:
    copied.dest.put("copy/f1", copied.dest_bytes("f1"))  # the right bytes, but no provenance
    v = copied.verify("full")
    assert _problems(v) == {"data/f1": "no_hash"} and v.differs == 1


def test_the_source_is_judged_as_it_is_now(pair: Pair) -> None:
    """A blob rewritten after the listing but before its copy is copied in its new version: not stale."""
    pair.put("f", b"old version")
    listed = pair.listing()  # the inventory
    pair.put("f", b"the new version")
    counts = pair.copy(listed)
    assert counts.copied == 1 and counts.retried == 1
    assert pair.verify(objects=listed).matched == 1
    pair.put("f", b"changed again after the copy")
    assert _problems(pair.verify(objects=listed)) == {"data/f": "stale"}


def test_a_destination_without_open_read_is_verified_with_head_and_a_read(tmp_path) -> None:
    s3 = MemoryServer("s3")
    s3.features = dataclasses.replace(s3.features, open_read=False)
    pair = Pair(MemoryServer("azure"), s3, tmp_path)
    pair.put("f", payload(3000))
    pair.copy()
    pair.s3.rot("dst", "copy/f")
    heads = s3.requests.get("head", 0)
    v = pair.verify("full")
    assert _problems(v) == {"data/f": "hash_differs"} and v.bytes_read == 3000
    assert s3.requests["head"] == heads + 1


def test_an_unknown_depth_is_refused() -> None:
    with pytest.raises(ConfigError, match="depth"):
        Verifier(None, None, None, None, depth="deep")  # type: ignore[arg-type]
