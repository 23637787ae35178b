"""A compact set of object keys: 8 bytes per key, for millions of keys.

Used to skip a HEAD request for every object that a destination listing shows is absent (a first copy
then costs one request per object instead of two), and to find destination objects with no source.
Listings of the two stores are not in the same order (SeaweedFS lists as a directory tree), so keys are held
as a sorted array of 64-bit hashes instead of merge-joining listings. Membership is exact for all practical
purposes: a collision (probability ~3e-6 at 10 million keys) can only make a lookup answer "present" for an
absent key, which costs a HEAD request, or hide one extra object in find_extras.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


class KeyIndex:
    def __init__(self, keys: Iterable[str]) -> None:
        self._hashes = np.fromiter((key_hash(k) for k in keys), dtype=np.uint64)
        self._hashes.sort()

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, key: str) -> bool:
        h = np.uint64(key_hash(key))
        i = int(np.searchsorted(self._hashes, h))
        return i < len(self._hashes) and self._hashes[i] == h

    def save(self, path: str) -> None:
        np.save(path, self._hashes)

    @classmethod
    def load(cls, path: str) -> KeyIndex:
        index = cls(())
        index._hashes = np.load(path)
        return index
