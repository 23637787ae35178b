"""The object feed of copy --verify: across threads, never blocking a dead reader."""

from __future__ import annotations

import threading


def test_object_feed_hands_objects_across_threads_and_never_blocks_a_dead_reader() -> None:
    """copy --verify's feed: everything put before close is read, in order; once abandoned (the verification
    died), put returns at once even when the feed is full, and the reader stops."""
    from datetime import UTC, datetime

    from hdh_migrate.stores.interface import ObjectInfo
    from hdh_migrate.transfer.verify import ObjectFeed

    infos = [ObjectInfo(name=f"o{i}", size=i, etag="e", last_modified=datetime.now(UTC)) for i in range(50)]
    feed = ObjectFeed(maxsize=4)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(o.name for o in feed))
    reader.start()
    for info in infos:
        feed.put(info)
    feed.close()
    reader.join(timeout=10)
    assert got == [o.name for o in infos]

    stuck = ObjectFeed(maxsize=1)
    stuck.put(infos[0])
    stuck.abandon()
    done = threading.Event()
    threading.Thread(target=lambda: (stuck.put(infos[1]), done.set())).start()
    assert done.wait(5)
    assert list(stuck) == []
