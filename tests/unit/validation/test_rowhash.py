"""The value hashes behind the dual-run fingerprints, against their definition written out value by value.

A fingerprint compares the two sides of a table, so the vectorised hashing must give exactly the hash its
definition gives, whatever the layout of the Arrow array (sliced, chunked, nulls, one length or many,
strings longer than the table's 1,024 positions): otherwise two copies of the same data could differ
only because one side's batches were cut elsewhere.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hdh_migrate.validation import rowhash as R


def _definition(value: bytes | None, salt: int) -> int:
    """One value's hash, as documented in rowhash: tabulation over (position, byte), then the mixed length."""
    if value is None:
        return R.mix64_int(R._NULL ^ salt)
    total = 0
    for i, b in enumerate(value):
        total = (total + int(R._TABLE[(i % R._TAB_POSITIONS) * 256 + b])) & R._MASK64
    return R.mix64_int(total ^ R.mix64_int(len(value) + salt))


def _expected(values: list[str | bytes | None], name: str, type_: pa.DataType) -> list[int]:
    salt = R.column_salt(name, type_)
    return [_definition(v.encode() if isinstance(v, str) else v, salt) for v in values]


def _random_words(rng: np.random.Generator, count: int, lengths: list[int], null_share: float) -> list[str | None]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éà日"
    out: list[str | None] = []
    for _ in range(count):
        if rng.random() < null_share:
            out.append(None)
            continue
        size = int(rng.choice(lengths))
        out.append("".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size)))
    return out


CASES = {
    "one length, no null (a pseudonymised id)": ([17], 0.0),
    "one length with nulls (a code)": ([6], 0.2),
    "one byte": ([1], 0.05),
    "several lengths, empty strings among them": ([0, 1, 2, 9, 30], 0.1),
    "only empty strings and nulls": ([0], 0.5),
    "longer than the table's positions": ([1500, 3], 0.1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_string_hashes_follow_their_definition(case: str) -> None:
    lengths, null_share = CASES[case]
    rng = np.random.default_rng(len(case))
    values = _random_words(rng, 600, lengths, null_share)
    for type_ in (pa.string(), pa.large_string()):
        arr = pa.array(values, type=type_)
        got = R.value_hashes(arr, "COL").tolist()
        assert got == _expected(values, "COL", type_), type_
        # a slice of the array (its offsets do not start at 0) hashes its values the same way
        assert R.value_hashes(arr.slice(37, 301), "COL").tolist() == got[37:338]
    # split into chunks (as a table read from several row groups): the same hashes, in order
    chunked = pa.chunked_array([pa.array(values[:250]), pa.array(values[250:])])
    assert R.value_hashes(chunked, "COL").tolist() == _expected(values, "COL", pa.string())


def test_long_strings_are_gathered_in_pieces() -> None:
    """More bytes of one length than one gather takes (R._GATHER_CELLS): cut into pieces, same sums."""
    rng = np.random.default_rng(7)
    size = 5000
    rows = R._GATHER_CELLS // size + 3
    blobs = [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for _ in range(rows)] + [b"x", None]
    arr = pa.array(blobs, type=pa.binary())
    assert R.value_hashes(arr, "B").tolist() == _expected(blobs, "B", pa.binary())


def test_what_a_hash_sees() -> None:
    """A changed byte, a swap of two bytes, null against empty, and the column's type all change the hash."""
    h = R.value_hashes(pa.array(["ABC", "ACB", "ABD", "", None]), "C").tolist()
    assert len(set(h)) == 5
    assert R.value_hashes(pa.array(["ABC"]), "C")[0] != R.value_hashes(pa.array(["ABC"], pa.large_string()), "C")[0]
    assert R.value_hashes(pa.array(["ABC"]), "C")[0] != R.value_hashes(pa.array(["ABC"]), "D")[0]


def test_row_fingerprint_ignores_row_order_and_sees_a_duplicate() -> None:
    rng = np.random.default_rng(3)
    ids = _random_words(rng, 1000, [17], 0.0)
    amounts = rng.integers(0, 10_000, 1000)
    table = pa.table({"ID": ids, "AMOUNT": amounts})

    def fingerprint(t: pa.Table) -> int:
        cols = [R.value_hashes(t.column(c), c) for c in t.column_names]
        return R.wrapping_sum(R.combine_rows(cols, t.num_rows))

    shuffled = table.take(rng.permutation(1000))
    assert fingerprint(shuffled) == fingerprint(table)
    duplicated = pa.concat_tables([table, table.slice(5, 1)]).slice(1)  # one row gone, another twice
    assert fingerprint(duplicated) != fingerprint(table)
