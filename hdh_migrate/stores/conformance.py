"""The conformance suite: what every store does, whatever its backend and transport (rclone's ``fstests``).

A plain library, so that the author of another backend can run it: each check is a function of a
``Target`` that raises AssertionError when the store misbehaves, or ``Skip`` when the store does not
declare the capability it checks (``Features``). ``run(target)`` runs them all. Our own tests run it
against Azurite and SeaweedFS through both transports and against the in-memory store
(``tests/conformance/``); the real servers are the reference the in-memory store is held to.

Each check writes under a prefix of its own, so they may share one empty container or bucket.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import crc32c as _crc32c

from hdh_migrate.errors import (
    BucketNotFoundError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    HdhMigrateError,
    ObjectNotFoundError,
    SourceChangedError,
)
from hdh_migrate.stores.interface import (
    DocumentWriter,
    MetadataRewriter,
    MultipartWriter,
    ObjectInfo,
    OpenRead,
    ReadInto,
    Store,
)

#: each optional capability: the Features flag that declares it, and the protocol that implements it
CAPABILITIES: dict[str, type] = {
    "read_into": ReadInto,
    "open_read": OpenRead,
    "multipart": MultipartWriter,
    "replace_metadata": MetadataRewriter,
    "documents": DocumentWriter,
}


class Skip(Exception):
    """The check does not apply: the store does not declare what it checks."""


@dataclass
class Target:
    """A store to check, and how to open the same backend where it must fail."""

    #: a store on an empty container or bucket the checks may write to
    store: Store
    #: the same backend and settings, on a container or bucket that does not exist
    missing: Callable[[], Store]
    #: the same backend and container with a wrong secret (None: the backend has no credentials)
    refused: Callable[[], Store] | None = None
    #: that wrong secret: no error message may contain it
    wrong_secret: str = ""


Check = Callable[[Target], None]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


def run(target: Target) -> dict[str, str]:
    """Every check on target: {name: "passed" or "skipped: why"}; AssertionError naming each that failed."""
    outcomes, failed = {}, []
    for name, fn in CHECKS.items():
        try:
            fn(target)
            outcomes[name] = "passed"
        except Skip as why:
            outcomes[name] = f"skipped: {why}"
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        raise AssertionError(f"{len(failed)} conformance check(s) failed on {target.store.describe()}: {failed}")
    return outcomes


# -- helpers ----------------------------------------------------------------------------------------
def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _requires(store: Store, *features: str) -> None:
    for feature in features:
        if not getattr(store.features, feature):
            raise Skip(f"the {store.kind} store does not declare {feature}")


def _raises(kind: type[BaseException], call: Callable[[], object], what: str) -> BaseException:
    """The exception call raised, which must be a kind (AssertionError naming what otherwise)."""
    try:
        call()
    except kind as exc:
        return exc
    except Exception as exc:
        raise AssertionError(f"{what}: raised {type(exc).__name__} ({exc}), not {kind.__name__}") from exc
    raise AssertionError(f"{what}: no {kind.__name__} raised")


def _sums(data: bytes) -> dict[str, bytes]:
    return {
        "md5": hashlib.md5(data).digest(),
        "sha256": hashlib.sha256(data).digest(),
        "crc32c": _crc32c.crc32c(data).to_bytes(4, "big"),
    }


def _not_found_error(store: Store) -> type[HdhMigrateError]:
    return ContainerNotFoundError if store.kind == "azure" else BucketNotFoundError


# -- the core ---------------------------------------------------------------------------------------
@check
def check_capabilities(t: Target) -> None:
    """Every capability a store declares is implemented, and what it says of itself is well formed."""
    f = t.store.features
    for name, protocol in CAPABILITIES.items():
        if getattr(f, name):
            assert isinstance(t.store, protocol), f"declares {name} but does not implement {protocol.__name__}"
    assert f.part_checksum in ("md5", "sha256", "crc32c"), f.part_checksum
    assert 1 <= f.max_parts <= 10_000, f.max_parts
    assert t.store.kind in ("azure", "s3") and t.store.container and t.store.page_size > 0
    assert isinstance(t.store.describe(), str) and t.store.describe()


@check
def check_objects_round_trip(t: Target) -> None:
    """put, head, list, read, delete, with names that need escaping and user metadata."""
    st, name, data = t.store, "round/a b/ü é+&.bin", payload(70_000, seed=3)
    md5 = hashlib.md5(data).digest()
    put = st.put(name, data, content_type="application/x-test", metadata={"origin": "snds"}, md5=md5)
    st.put("round/other", b"x")
    st.put("round/empty", b"")
    st.put("roundabout", b"y")  # shares the prefix's letters, not its folder
    head = st.head(name)
    assert head is not None and (head.name, head.size) == (name, len(data)), head
    assert head.etag == put.etag and head.content_type == "application/x-test", (head, put)
    assert head.metadata.get("origin") == "snds", head.metadata
    assert head.last_modified.tzinfo is not None, head.last_modified
    if st.features.etag_is_md5:
        assert head.etag == md5.hex(), f"declares etag_is_md5: {head.etag} != {md5.hex()}"
    expected_md5 = md5 if st.features.keeps_content_md5 else None
    assert head.content_md5 == expected_md5, f"content_md5 {head.content_md5!r}, keeps_content_md5={expected_md5}"
    other = st.head("round/other")
    assert other is not None and other.content_type == "application/octet-stream", other  # the default type
    listed = {o.name: o for o in st.list("round/")}
    assert sorted(listed) == [name, "round/empty", "round/other"], sorted(listed)
    _listed_as_head(st, listed[name], head)
    assert st.read_range(name, 1000, 500) == data[1000:1500]
    assert st.read_range(name, 0, 0) == b""
    assert b"".join(st.iter_read(name, chunk_size=8192)) == data
    assert b"".join(st.iter_read("round/empty", chunk_size=8192)) == b"" and listed["round/empty"].size == 0
    st.delete("round/other")
    assert st.head("round/other") is None
    assert [o.name for o in st.list("round/")] == [name, "round/empty"]


def _listed_as_head(st: Store, listed: ObjectInfo, head: ObjectInfo) -> None:
    """A listing says what a HEAD says where it lists metadata (Features.list_metadata), else name, size, ETag."""
    assert (listed.name, listed.size, listed.etag) == (head.name, head.size, head.etag), (listed, head)
    if st.features.list_metadata:
        assert listed == head, (listed, head)
    else:
        assert (listed.content_type, listed.content_md5, listed.metadata) == (None, None, {}), listed


@check
def check_missing_object(t: Target) -> None:
    """An object that does not exist: head says None, a read is an ObjectNotFoundError."""
    st = t.store
    assert st.head("missing/none") is None
    exc = _raises(ObjectNotFoundError, lambda: st.read_range("missing/none", 0, 10), "read of a missing object")
    assert "does not exist" in str(exc), exc
    _raises(ObjectNotFoundError, lambda: b"".join(st.iter_read("missing/none", chunk_size=1024)), "iter_read")


@check
def check_pinned_read_fails_after_a_rewrite(t: Target) -> None:
    st = t.store
    st.put("pinned/obj", b"version one")
    head = st.head("pinned/obj")
    assert head is not None
    assert st.read_range("pinned/obj", 0, 7, etag=head.etag) == b"version"
    st.put("pinned/obj", b"version two")
    after = st.head("pinned/obj")
    assert after is not None and after.etag != head.etag, "a rewrite keeps the ETag"
    _raises(SourceChangedError, lambda: st.read_range("pinned/obj", 0, 7, etag=head.etag), "pinned read")
    chunks = st.iter_read("pinned/obj", chunk_size=4, etag=head.etag)
    _raises(SourceChangedError, lambda: b"".join(chunks), "pinned iter_read")


@check
def check_listing_across_pages(t: Target) -> None:
    """105 objects listed 40 at a time: three pages, the last one partial, every name once."""
    st, saved = t.store, t.store.page_size
    for i in range(105):
        st.put(f"many/{i:05d}", b"")
    st.page_size = 40
    try:
        names = [o.name for o in st.list("many/")]
    finally:
        st.page_size = saved
    assert sorted(names) == [f"many/{i:05d}" for i in range(105)], (len(names), names[:3])


@check
def check_missing_container_is_a_typed_error(t: Target) -> None:
    missing, kind = t.missing(), _not_found_error(t.store)
    for prefix in ("", "under/a/prefix/"):
        exc = _raises(kind, lambda p=prefix: missing.check_access(p), f"check_access({prefix!r})")
        assert "does not exist" in str(exc) and missing.container in str(exc), exc
    _raises(kind, lambda: list(missing.list("")), "list")
    _raises(kind, lambda: missing.read_range("x", 0, 10), "read_range")


@check
def check_refused_credentials_are_a_typed_error_without_the_secret(t: Target) -> None:
    if t.refused is None:
        raise Skip("the backend has no credentials")
    t.store.put("secret/there", b"content")
    bad = t.refused()
    calls = {
        "check_access": lambda: bad.check_access(),
        "read_range": lambda: bad.read_range("secret/there", 0, 3),
        "put": lambda: bad.put("secret/new", b"x", md5=hashlib.md5(b"x").digest()),
    }
    for what, call in calls.items():
        exc = _raises(CredentialsError, call, f"{what} with a wrong secret")
        assert t.wrong_secret not in str(exc) and t.wrong_secret not in repr(exc.args), f"{what}: the secret shows"
    assert t.store.read_range("secret/there", 2, 3) == b"nte"
    assert t.store.head("secret/new") is None


@check
def check_corrupted_body_is_refused(t: Target) -> None:
    """A body whose integrity header does not match its bytes is refused, and nothing is stored."""
    st, good = t.store, payload(1000, seed=7)
    bad = good[:-1] + b"!"
    exc = _raises(CorruptedTransferError, lambda: st.put("corrupt/k", bad, md5=_sums(good)["md5"]), "put, wrong MD5")
    assert "checksum" in str(exc), exc
    if st.features.part_checksum == "sha256":
        _raises(CorruptedTransferError, lambda: st.put("corrupt/k", bad, sha256=_sums(good)["sha256"]), "SHA-256")
    assert st.head("corrupt/k") is None
    st.put("corrupt/k", good, md5=_sums(good)["md5"])
    assert st.read_range("corrupt/k", 0, len(good)) == good


# -- optional capabilities --------------------------------------------------------------------------
@check
def check_read_into_a_reused_buffer(t: Target) -> None:
    """The copier reads parts into buffers it reuses: a dirty buffer gets exactly the range, read after read
    on the same connections, and a pinned read of a changed object still fails as a changed source."""
    _requires(t.store, "read_into")
    st: ReadInto = t.store  # type: ignore[assignment]
    data = payload(300_000, seed=5)
    t.store.put("into/obj", data)
    head = t.store.head("into/obj")
    assert head is not None
    buf = bytearray(b"\xff" * 120_000)
    for offset in (0, 100_000, 180_000, 0):
        view = memoryview(buf)[: min(120_000, len(data) - offset)]
        st.read_range_into("into/obj", offset, view, etag=head.etag)
        assert bytes(view) == data[offset : offset + len(view)], offset
    st.read_range_into("into/obj", 0, memoryview(buf)[:0], etag=head.etag)  # nothing to read
    t.store.put("into/obj", data[::-1])
    stale = memoryview(buf)[:10]
    _raises(SourceChangedError, lambda: st.read_range_into("into/obj", 0, stale, etag=head.etag), "pinned read_into")


@check
def check_open_read(t: Target) -> None:
    """What a full verification reads: the properties and every byte from one request, or None if absent."""
    _requires(t.store, "open_read")
    st: OpenRead = t.store  # type: ignore[assignment]
    data = payload(3 * 1024 * 1024 + 5, seed=9)
    t.store.put("v/obj", data, content_type="text/csv", metadata={"hdh-sha256": "abc"}, md5=_sums(data)["md5"])
    head = t.store.head("v/obj")
    opened = st.open_read("v/obj", chunk_size=1024 * 1024)
    assert opened is not None and head is not None
    info, chunks = opened
    assert (info.size, info.etag, info.metadata.get("hdh-sha256")) == (len(data), head.etag, "abc"), info
    assert info.content_type == "text/csv" and info.last_modified.tzinfo is not None, info
    assert b"".join(chunks) == data
    assert st.open_read("v/missing", chunk_size=1024) is None
    # views of one reused buffer, each hashed before the next is read
    reused = st.open_read("v/obj", chunk_size=1024 * 1024, reuse_buffer=True)
    assert reused is not None
    h, total = hashlib.sha256(), 0
    for view in reused[1]:
        h.update(view)
        total += len(view)
    assert h.digest() == hashlib.sha256(data).digest() and total == len(data)
    # an abandoned stream frees what it holds: the store stays usable
    partial = st.open_read("v/obj", chunk_size=1024)
    assert partial is not None
    next(partial[1])
    partial[1].close()  # type: ignore[attr-defined]
    assert t.store.read_range("v/obj", 10, 5) == data[10:15]


def _upload_part(st: MultipartWriter, name: str, upload: str, number: int, data: bytes) -> dict[str, object]:
    s = _sums(data)
    return st.upload_part(name, upload, number, data, md5=s["md5"], sha256=s["sha256"], crc32c=s["crc32c"])


@check
def check_corrupted_part_is_refused(t: Target) -> None:
    """A part whose bytes do not match the store's part checksum (Features.part_checksum) is refused; a good
    part's answer repeats the checksum that completing the upload needs."""
    _requires(t.store, "multipart")
    st: MultipartWriter = t.store  # type: ignore[assignment]
    algo, good = t.store.features.part_checksum, payload(1000, seed=11)
    upload = st.start_multipart("part/k", content_type=None, metadata={})
    only: dict[str, bytes | None] = {"md5": None, algo: _sums(good)[algo]}  # the store's checksum alone
    exc = _raises(
        CorruptedTransferError,
        lambda: st.upload_part("part/k", upload, 1, good[:-1] + b"!", **only),  # type: ignore[arg-type]
        f"a part with a wrong {algo}",
    )
    assert "checksum" in str(exc), exc
    part = _upload_part(st, "part/k", upload, 1, good)
    assert part["PartNumber"] == 1 and part["ETag"], part
    field = {"sha256": "ChecksumSHA256", "crc32c": "ChecksumCRC32C"}.get(algo)
    if field is not None:
        assert part[field] == base64.b64encode(_sums(good)[algo]).decode(), part
    st.abort_multipart("part/k", upload)
    assert list(st.list_multipart_uploads("part/")) == []


@check
def check_multipart_upload_and_metadata_rewrite(t: Target) -> None:
    """Parts, completed, make the object; its metadata is then replaced in place, its bytes unchanged; a
    complete with a part the store does not hold is refused with a typed error."""
    _requires(t.store, "multipart", "replace_metadata")
    st: MultipartWriter = t.store  # type: ignore[assignment]
    name, part1, part2 = "mp/obj & more", payload(5 * 1024 * 1024, seed=1), payload(1234, seed=2)
    upload = st.start_multipart(name, content_type="application/x-parquet", metadata={"stage": "1"})
    parts = [_upload_part(st, name, upload, i, d) for i, d in enumerate((part1, part2), start=1)]
    done = st.complete_multipart(name, upload, parts)
    if t.store.features.etag_is_md5:
        md5s = hashlib.md5(part1).digest() + hashlib.md5(part2).digest()
        assert done.etag == hashlib.md5(md5s).hexdigest() + "-2", done
    new_meta = {"stage": "2", "hdh-sha256": "f" * 64}
    rewriter: MetadataRewriter = t.store  # type: ignore[assignment]
    rewriter.replace_metadata(
        name, size=len(part1) + len(part2), content_type="application/x-parquet", metadata=new_meta
    )
    info = t.store.head(name)
    assert info is not None and info.metadata == new_meta and info.content_type == "application/x-parquet", info
    assert info.size == len(part1) + len(part2)
    assert t.store.read_range(name, len(part1) - 2, 4) == part1[-2:] + part2[:2]
    upload = st.start_multipart("mp/bad", content_type=None, metadata={})
    good = _upload_part(st, "mp/bad", upload, 1, part1)
    wrong = [dict(good, ETag='"' + "0" * 32 + '"')]
    exc = _raises(HdhMigrateError, lambda: st.complete_multipart("mp/bad", upload, wrong), "complete, a wrong part")
    assert t.store.head("mp/bad") is None, exc
    st.abort_multipart("mp/bad", upload)
    st.abort_multipart("mp/bad", upload)  # twice: an upload already gone is not an error


@check
def check_unfinished_uploads_listed_and_aborted(t: Target) -> None:
    """Unfinished uploads are listed under a prefix (names that need escaping included), their parts too,
    and aborting them leaves none."""
    _requires(t.store, "multipart")
    st: MultipartWriter = t.store  # type: ignore[assignment]
    names = ["up/a b.bin", "up/ü/é.csv", "up/a+b&c<d>'\""]
    uploads = {st.start_multipart(n, content_type=None, metadata={"k": "v"}): n for n in names}
    outside = st.start_multipart("elsewhere/x", content_type=None, metadata={})
    listed = sorted(st.list_multipart_uploads("up/"))
    assert {u: k for k, u, _ in listed} == uploads, listed
    assert all(isinstance(when, datetime) and when.tzinfo is not None for _, _, when in listed), listed
    upload_id, name = next(iter(uploads.items()))
    data = payload(1000, seed=4)
    etag = _upload_part(st, name, upload_id, 1, data)["ETag"]
    parts = st.list_parts(name, upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, len(data), etag)], parts
    for upload_id, name in uploads.items():
        st.abort_multipart(name, upload_id)
    assert list(st.list_multipart_uploads("up/")) == []
    st.abort_multipart("elsewhere/x", outside)


@check
def check_documents(t: Target) -> None:
    """hdh-migrate's own documents: written with their Content-MD5, read back whole, None when absent."""
    _requires(t.store, "documents")
    st: DocumentWriter = t.store  # type: ignore[assignment]
    body = b'{"dataset": "snds", "r\xc3\xa9sultat": true}'
    put = st.put_document("docs/routing.json", body, content_type="application/json")
    head = t.store.head("docs/routing.json")
    assert head is not None and head.etag == put.etag and head.content_type == "application/json", head
    assert st.read_document("docs/routing.json") == body
    assert st.read_document("docs/missing.json") is None
    enabled, why = st.object_lock()
    assert isinstance(enabled, bool) and (enabled or why), (enabled, why)
    facts = st.report_facts()
    assert {"provider", "endpoint", "encryption"} <= set(facts), facts
