"""Blob names to S3 keys: kept exactly where S3 allows, rejected with the reason where it does not."""

from __future__ import annotations

import pytest

from hdh_migrate.errors import InvalidObjectNameError
from hdh_migrate.transfer.keys import check_key


@pytest.mark.parametrize("key", ["a b/ü é.parquet", "x%20y#z", "deep/" * 50 + "f", "日本語/データ.csv"])
def test_names_kept_exactly(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a\x01b", "control character"),
        ("a//b", "segment"),
        ("a/../b", "segment"),
        ("x" * 1025, "too long"),
        ("dir/", "folder marker"),
    ],
)
def test_unsafe_names_rejected_with_reason(key: str, why: str) -> None:
    with pytest.raises(InvalidObjectNameError, match=why):
        check_key(key)
