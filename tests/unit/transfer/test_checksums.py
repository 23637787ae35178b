"""Hashes of the copier: the whole-object SHA-256 in part order, S3 multipart ETags, CRC32C."""

from __future__ import annotations

import hashlib
import random

from hdh_migrate.transfer.checksums import OrderedHasher, crc32c, multipart_etag


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


def test_crc32c_takes_bytes_and_buffers_alike() -> None:
    data = bytes(range(256)) * 1000
    assert crc32c(b"hello world") == bytes.fromhex("c99465aa")  # AWS's x-amz-checksum-crc32c yZRlqg==
    assert crc32c(data) == crc32c(bytearray(data)) == crc32c(memoryview(bytearray(data)))
