"""How a multipart copy ends when something fails at an exact moment: never hung, never an orphan upload,
never held memory. The in-memory stores fail the request wanted (``inject``); the engine's behaviour on the
real servers is in tests/integration/transfer."""

from __future__ import annotations

import hashlib
import threading

import pytest

from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.transfer.copier import Copier

from .conftest import PART, Pair, payload


def _process_in_thread(copier: Copier, pair: Pair, name: str) -> list:
    """copier.process on its own thread, so that a hang fails the test instead of blocking it."""
    info = pair.source.head(f"data/{name}")
    result: list = []
    t = threading.Thread(target=lambda: result.append(copier.process(info)), daemon=True)
    t.start()
    t.join(timeout=30)
    copier.close()
    assert not t.is_alive(), "the copier hung"
    return result


def test_a_failing_part_with_the_budget_full_fails_the_object_instead_of_hanging(pair: Pair) -> None:
    """The parts behind a failed one wait in the hasher holding their budget: the coordinator waiting for
    budget must notice the failure instead of waiting for bytes that will never come back."""
    pair.put("big", payload(12 * PART), md5=False)
    pair.azure.inject("read", lambda: StoreUnavailableError("Azure returned HTTP 500"), name="data/big")
    copier = pair.copier(part_size=PART, workers=4, max_memory=3 * PART, retries=0)
    [out] = _process_in_thread(copier, pair, "big")
    assert out.status == "failed" and out.error_code == "store_unavailable"
    assert pair.uploads_left() == 0 and pair.s3.requests["abort_multipart"] == 1  # no orphan parts
    assert copier.budget.used == 0  # every byte of budget came back


@pytest.mark.parametrize("workers", [1, 8])
def test_the_budget_comes_back_to_zero_and_never_passes_its_capacity(pair: Pair, workers: int) -> None:
    data = payload(7 * PART, seed=1)
    pair.put("big", data)
    for i in range(10):
        pair.put(f"small-{i}", payload(PART // 8, seed=i))
    copier = pair.copier(part_size=PART, workers=workers, max_memory=2 * PART)
    try:
        counts = copier.run(pair.listing())
    finally:
        copier.close()
    assert counts.copied == 11
    assert pair.dest_bytes("big") == data
    assert pair.dest_head("big").metadata["hdh-sha256"] == hashlib.sha256(data).hexdigest()
    assert copier.budget.used == 0 and 0 < copier.budget.peak <= copier.budget.capacity == 2 * PART


def test_a_failed_complete_aborts_the_upload(pair: Pair) -> None:
    pair.put("big", payload(3 * PART))
    pair.s3.inject("complete_multipart", lambda: StoreUnavailableError("S3 returned HTTP 503"))
    counts = pair.copy(part_size=PART, retries=0)
    assert counts.failed == 1 and counts.errors[0]["code"] == "store_unavailable"
    assert pair.uploads_left() == 0 and pair.dest_head("big") is None


def test_an_interrupt_during_the_complete_aborts_the_upload_and_gives_the_budget_back(pair: Pair) -> None:
    """Ctrl-C reaches the thread that completes the upload: the object ends as cancelled, nothing left over."""

    def interrupt() -> StoreUnavailableError:
        raise KeyboardInterrupt

    pair.put("big", payload(3 * PART))
    pair.s3.inject("complete_multipart", interrupt)
    copier = pair.copier(part_size=PART)
    out = copier.process(pair.source.head("data/big"))
    copier.close()
    assert (out.status, out.error_code) == ("failed", "cancelled")
    assert pair.uploads_left() == 0 and copier.budget.used == 0


def test_a_cancel_mid_copy_stops_the_parts_and_aborts_the_upload(pair: Pair) -> None:
    pair.put("big", payload(8 * PART))
    copier = pair.copier(part_size=PART, workers=2, bwlimit=20 * 1024 * 1024)  # ~2 s for the object
    threading.Timer(0.3, copier.cancel.set).start()
    [out] = _process_in_thread(copier, pair, "big")
    assert (out.status, out.error_code) == ("failed", "cancelled")
    assert pair.s3.requests["upload_part"] < 8  # stopped before the end
    assert pair.uploads_left() == 0 and copier.budget.used == 0
