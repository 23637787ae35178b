"""Failure paths of the engine that real servers cannot produce on demand, with in-memory fakes.

Unit tests only: every behaviour here is also exercised against the real rig elsewhere; the fakes make a
part fail at an exact moment, with the memory budget full, which is where a copier can deadlock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime

import pytest

from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.locations import parse_location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores.interface import Features, ObjectInfo, PutResult
from hdh_migrate.transfer.copier import Copier, CopyOptions

PART = 5 * MiB


class FlakySource:
    kind = "azure"
    container = "src"
    features = Features()

    def __init__(self, data: bytes, fail_offset: int) -> None:
        self.data, self.fail_offset = data, fail_offset

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if offset == self.fail_offset:
            time.sleep(0.3)  # let later parts fill the budget first
            raise StoreUnavailableError("Azure returned HTTP 500")
        return self.data[offset : offset + length]


class MemoryDest:
    kind = "s3"
    container = "dst"
    features = Features(multipart=True, replace_metadata=True, etag_is_md5=True)

    def __init__(self) -> None:
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []

    def head(self, name: str) -> None:
        return None

    def list_multipart_uploads(self, prefix: str):
        return iter(())

    def start_multipart(self, name: str, *, content_type, metadata) -> str:
        self.uploads["u1"] = {}
        return "u1"

    def upload_part(self, name, upload_id, number, data, *, md5, sha256=None, crc32c=None):
        self.uploads[upload_id][number] = data
        return {"PartNumber": number, "ETag": f'"{hashlib.md5(data).hexdigest()}"'}

    def abort_multipart(self, name: str, upload_id: str) -> None:
        self.aborted.append(upload_id)

    def put(self, *a, **k) -> PutResult:  # pragma: no cover - not reached: the object is multipart
        raise AssertionError


def test_a_failing_part_with_the_budget_full_fails_the_object_instead_of_hanging() -> None:
    data = bytes(12 * PART)
    source, dest = FlakySource(data, fail_offset=0), MemoryDest()
    info = ObjectInfo("data/big", len(data), "etag1", datetime.now(UTC))
    copier = Copier(
        source,
        dest,
        parse_location("azure://src/data"),
        parse_location("s3://dst/c"),  # type: ignore[arg-type]
        CopyOptions(part_size=PART, workers=4, max_memory=3 * PART, retries=0),
    )
    result: list = []
    t = threading.Thread(target=lambda: result.append(copier.process(info)), daemon=True)
    t.start()
    t.join(timeout=30)
    copier.close()
    assert not t.is_alive(), "the copier hung waiting for memory held by parts behind the failed one"
    assert result[0].status == "failed" and result[0].error_code == "store_unavailable"
    assert dest.aborted == ["u1"]  # the multipart upload was aborted: no orphan parts
    assert copier.budget.used == 0  # every byte of budget came back


@pytest.mark.parametrize("workers", [1, 8])
def test_budget_is_returned_after_success(workers: int) -> None:
    data = bytes(range(256)) * (7 * PART // 256)
    dest = MemoryDest()

    class Source(FlakySource):
        def read_range(self, name, offset, length, *, etag=None):
            return self.data[offset : offset + length]

    dest.replace_metadata = lambda *a, **k: None  # type: ignore[attr-defined]
    dest.complete_multipart = lambda name, uid, parts: PutResult(  # type: ignore[attr-defined]
        etag=hashlib.md5(b"".join(bytes.fromhex(p["ETag"].strip('"')) for p in parts)).hexdigest() + f"-{len(parts)}"
    )
    copier = Copier(
        Source(data, -1),
        dest,
        parse_location("azure://src/data"),
        parse_location("s3://dst/c"),  # type: ignore[arg-type]
        CopyOptions(part_size=PART, workers=workers, max_memory=2 * PART),
    )
    out = copier.process(ObjectInfo("data/big", len(data), "e", datetime.now(UTC)))
    copier.close()
    assert out.status == "copied", out.reason
    assert b"".join(dest.uploads["u1"][n] for n in sorted(dest.uploads["u1"])) == data
    assert out.digests.sha256 == hashlib.sha256(data).hexdigest()
    assert copier.budget.used == 0 and copier.budget.peak <= 2 * PART
