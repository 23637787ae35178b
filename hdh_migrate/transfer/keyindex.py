"""A compact set of object keys: 8 bytes per key, for millions of keys.

Used to skip a HEAD request for every object that a destination listing shows is absent (a first copy
then costs one request per object instead of two), and to find destination objects with no source.
Listings of the two stores are not in the same order (SeaweedFS lists as a directory tree), so keys are held
as a sorted array of 64-bit hashes instead of merge-joining listings. Membership is exact for all practical
purposes: a collision (probability ~3e-6 at 10 million keys) can only make a lookup answer "present" for an
absent key, which costs a HEAD request, or hide one extra object in find_extras.

numpy is imported only once there is a key to sort: a first copy lists an empty destination, and
importing numpy (~40 ms of CPU) would be its only use of it.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from typing import Any


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


class KeyIndex:
    def __init__(self, keys: Iterable[str]) -> None:
        raw = array("Q", (key_hash(k) for k in keys))  # 8 bytes per key while the listing streams in
        self._hashes: Any = None  # a sorted numpy uint64 array, None when there is no key
        if raw:
            import numpy as np  # lazy: ~40 ms of import (module docstring)

            self._hashes = np.frombuffer(raw, dtype=np.uint64)  # shares the array's memory: no copy
            self._hashes.sort()

    def __len__(self) -> int:
        return 0 if self._hashes is None else len(self._hashes)

    def __contains__(self, key: str) -> bool:
        if self._hashes is None:
            return False
        import numpy as np  # lazy: ~40 ms of import (module docstring)

        h = np.uint64(key_hash(key))
        i = int(np.searchsorted(self._hashes, h))
        return i < len(self._hashes) and self._hashes[i] == h

    def save(self, path: str) -> None:
        import numpy as np  # lazy: ~40 ms of import (module docstring)

        np.save(path, self._hashes if self._hashes is not None else np.zeros(0, dtype=np.uint64))

    @classmethod
    def load(cls, path: str) -> KeyIndex:
        import numpy as np  # lazy: ~40 ms of import (module docstring)

        index = cls(())
        hashes = np.load(path)
        index._hashes = hashes if len(hashes) else None
        return index
