"""Pure logic, no servers: sizes, URLs, names, part sizing, in-order hashing, budgets, settings."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from hdh_migrate.budget import ByteBudget
from hdh_migrate.checksums import OrderedHasher, multipart_etag
from hdh_migrate.config import S3Settings, Secret, encryption_summary, s3_settings_from_env
from hdh_migrate.copy import MAX_PARTS, CopyOptions, part_size_for
from hdh_migrate.errors import ConfigError, InvalidObjectNameError, MalformedURLError
from hdh_migrate.names import check_key
from hdh_migrate.sizes import GiB, MiB, TiB, parse_size
from hdh_migrate.urls import parse_location


def test_sizes_parse_like_rclone() -> None:
    assert parse_size("8MiB") == 8 * MiB
    assert parse_size("8M") == 8 * MiB
    assert parse_size("1.5GiB") == int(1.5 * GiB)
    assert parse_size("1000") == 1000
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("eight")


def test_locations_keep_prefix_as_folder() -> None:
    loc = parse_location("azure://snds-raw/dcir/2024")
    assert (loc.scheme, loc.container, loc.prefix) == ("azure", "snds-raw", "dcir/2024/")
    assert parse_location("s3://bucket-1").prefix == ""
    assert parse_location("s3://bucket-1/a/").key_for("x/y.parquet") == "a/x/y.parquet"


@pytest.mark.parametrize(
    "url", ["", "azure:/c/p", "http://c/p", "azure://Bad_Container/p", "s3://ab/p", "azure://ok-container/a//b"]
)
def test_malformed_locations_are_rejected(url: str) -> None:
    with pytest.raises(MalformedURLError):
        parse_location(url)


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


def test_part_size_grows_to_respect_the_10000_part_limit() -> None:
    assert part_size_for(100 * MiB, 8 * MiB) == 8 * MiB
    assert part_size_for(1, 1 * MiB) == 5 * MiB  # S3 minimum
    for size in (80 * GiB, 1 * TiB, 5 * TiB):
        part = part_size_for(size, 8 * MiB)
        assert -(-size // part) <= MAX_PARTS
        assert part % MiB == 0


def test_copy_options_refuse_a_budget_smaller_than_two_parts() -> None:
    with pytest.raises(ConfigError, match="max-memory"):
        CopyOptions(part_size=64 * MiB, max_memory=100 * MiB).validate()
    with pytest.raises(ConfigError, match="part size"):
        CopyOptions(part_size=1 * MiB).validate()


def test_ordered_hasher_gives_the_whole_object_hash_whatever_the_part_order() -> None:
    data = random.Random(1).randbytes(10_000)
    parts = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    order = list(range(1, len(parts) + 1))
    random.Random(2).shuffle(order)
    h = OrderedHasher()
    released: list[int] = []
    for n in order:
        released += h.add(n, parts[n - 1])
    assert sorted(released) == list(range(1, len(parts) + 1))
    d = h.digests()
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.md5 == hashlib.md5(data).hexdigest()
    assert d.size == len(data)


def test_multipart_etag_matches_s3_rule() -> None:
    md5s = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert multipart_etag(md5s) == hashlib.md5(b"".join(md5s)).hexdigest() + "-2"


def test_byte_budget_never_exceeds_capacity_under_contention() -> None:
    budget = ByteBudget(10)

    def worker() -> None:
        for _ in range(200):
            budget.acquire(3)
            assert budget.used <= 10
            budget.release(3)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak <= 10 and budget.used == 0


def test_s3_settings_from_env_apply_profile_then_overrides() -> None:
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "AWS_REGION": "gra"})
    assert (s.addressing_style, s.request_checksum_calculation, s.region) == ("virtual", "when_required", "gra")
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "HDH_S3_ADDRESSING_STYLE": "path"})
    assert s.addressing_style == "path"
    with pytest.raises(ConfigError, match="unknown S3 provider"):
        s3_settings_from_env({"HDH_S3_PROVIDER": "nope"})


def test_sse_c_key_is_validated_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        S3Settings(sse="sse-c", sse_c_key=Secret("c2hvcnQ="))
    import base64

    key = base64.b64encode(bytes(range(32))).decode()
    s = S3Settings(sse="sse-c", sse_c_key=Secret(key))
    summary = encryption_summary(s)
    assert summary["mode"] == "sse-c" and summary["sse_c_key_fingerprint"].startswith("sha256:")
    assert key not in repr(s) and key not in str(summary)


def test_allocator_tuning_applies_once_and_respects_explicit_variables(monkeypatch) -> None:
    import platform

    from hdh_migrate import memory

    monkeypatch.setattr(memory, "_done", False)
    applied = memory.tune_allocator()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert memory.tune_allocator() is applied  # idempotent
