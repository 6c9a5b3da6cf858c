"""A gallery following a real redis-server that loses its data (FLUSHALL, or a restart without
persistence): the follower must rebuild it from what the store holds now, swapping it whole."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bioverify.index.gallery import Gallery, GalleryFollower
from bioverify.store.redis_store import RedisTemplateStore
from tests.conftest import wait_until
from tests.index.test_gallery import DIM, People, enroll, subjects
from tests.redis_server import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, without persistence: a restart comes back empty."""
    with RedisServer(tmp_path / "redis") as s:
        yield s


@pytest.mark.parametrize("loss", ["flushall", "restart"])
def test_follower_rebuilds_the_gallery_when_redis_loses_its_data(
    server: RedisServer, loss: str, caplog: pytest.LogCaptureFixture
) -> None:
    people = People(20)
    store = RedisTemplateStore(server.url, socket_timeout=0.5, retries=1)
    for name in ("ann", "bob"):
        enroll(store, people, "t", name)
    gallery = Gallery("face", "m1", DIM)
    gallery.rebuild(store)
    reachable: list[bool] = []
    follower = GalleryFollower(
        gallery, store, poll=0.2, retry=0.1, on_store_reachable=reachable.append
    )
    old = {"ann", "bob", "cyd"}
    seen: list[frozenset[str]] = []
    stop = threading.Event()

    def searcher() -> None:  # what identifications see while it all happens
        while not stop.is_set():
            seen.append(frozenset(subjects(gallery, "t", people)))
            time.sleep(0.0005)

    watcher = threading.Thread(target=searcher)
    follower.start()
    watcher.start()
    try:
        enroll(store, people, "t", "cyd")
        assert wait_until(lambda: subjects(gallery, "t", people) == old)
        assert gallery.seq == 3
        with caplog.at_level(logging.WARNING, logger="bioverify.index.gallery"):
            if loss == "flushall":
                with redis.Redis.from_url(server.url) as raw:
                    raw.flushall()
            else:
                server.stop()
                assert wait_until(lambda: reachable == [False])
                assert not follower.store_reachable
                time.sleep(0.5)  # several retries while it is down...
                outage = [r for r in caplog.records if "unavailable" in r.getMessage()]
                by_logger = sorted(r.name for r in outage)  # ...logged once by each
                assert by_logger == ["bioverify.index.gallery", "bioverify.store.redis_store"]
                assert all(r.exc_info is None for r in outage)
                server.start()  # same port, nothing on disk: empty
            # Its first change has seq 1, long before the gallery's 3.
            enroll(store, people, "t", "dan")
            assert wait_until(lambda: subjects(gallery, "t", people) == {"dan"})
        assert gallery.follows(store.feed_position())
        assert "emptied or replaced" in caplog.text
        assert "dan" not in caplog.text and "ann" not in caplog.text  # positions only
        enroll(store, people, "t", "eve")  # and it goes on following
        assert wait_until(lambda: subjects(gallery, "t", people) == {"dan", "eve"})
    finally:
        stop.set()
        watcher.join()
        follower.stop(timeout=5.0)
        store.close()
    assert reachable == ([False, True] if loss == "restart" else [])
    # Searches saw the old gallery or the new one, never a mixture of both.
    before = [frozenset({"ann", "bob"}), frozenset(old)]
    after = [frozenset(), frozenset({"dan"}), frozenset({"dan", "eve"})]
    assert set(seen) <= {*before, *after}
    assert frozenset(old) in seen and frozenset({"dan"}) in seen
