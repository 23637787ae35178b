"""The destination key index: membership without holding every key as a Python string."""

from __future__ import annotations


def test_key_index_membership_with_and_without_keys(tmp_path) -> None:
    from hdh_migrate.transfer.keyindex import KeyIndex

    keys = [f"data/part={i % 7}/obj-{i:05d}.bin" for i in range(5000)]
    index = KeyIndex(keys)
    assert len(index) == 5000
    assert all(k in index for k in keys[::97])
    assert "data/part=0/obj-99999.bin" not in index
    empty = KeyIndex(())
    assert len(empty) == 0 and keys[0] not in empty
    index.save(str(tmp_path / "i.npy"))
    empty.save(str(tmp_path / "e.npy"))
    again = KeyIndex.load(str(tmp_path / "i.npy"))
    assert len(again) == 5000 and keys[123] in again and "nope" not in again
    assert len(KeyIndex.load(str(tmp_path / "e.npy"))) == 0
