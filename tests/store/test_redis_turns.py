"""Turns held in Redis (``RedisTurns``), on a real redis-server: one holder at a time per
name across clients (replicas), a dead holder's turn freed after its hold time, a holder whose
turn expired never frees its successor's, and a wait that ends in a clear error."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from bioverify.errors import Unavailable
from bioverify.store.redis_connection import connect
from bioverify.store.redis_turns import RedisTurns


def replica(url: str, **kwargs: float) -> RedisTurns:
    """Turns on a connection of their own, as another replica's."""
    return RedisTurns(connect(url), key_prefix="t:", **kwargs)


def test_replicas_take_turns_per_name(redis_url: str) -> None:
    a, b = replica(redis_url), replica(redis_url)
    holders: list[str] = []
    overlaps: list[str] = []
    inside = threading.Lock()

    def hold(turns: RedisTurns, who: str) -> None:
        for _ in range(5):
            with turns.turn("enrolment:face:bank"):
                if not inside.acquire(blocking=False):
                    overlaps.append(who)
                    continue
                holders.append(who)
                time.sleep(0.01)
                inside.release()

    threads = [threading.Thread(target=hold, args=(t, w)) for t, w in ((a, "a"), (b, "b"))]
    threads += [threading.Thread(target=hold, args=(a, "a2"))]  # a second thread of replica a
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert overlaps == [] and sorted(set(holders)) == ["a", "a2", "b"] and len(holders) == 15
    with a.turn("enrolment:face:bank"), b.turn("enrolment:face:other-bank"):
        pass  # other names are not held
    assert redis.Redis.from_url(redis_url).keys("t:turn:*") == []  # every turn was freed


def test_a_dead_holders_turn_is_freed_after_its_hold_time(redis_url: str) -> None:
    dead, alive = replica(redis_url, hold_s=0.3), replica(redis_url, wait_s=5)
    dead._take("t:turn:enrolment%3Aface%3Abank", "token-of-a-crashed-replica")
    started = time.monotonic()
    with alive.turn("enrolment:face:bank"):
        waited = time.monotonic() - started
    assert 0.2 < waited < 3


def test_an_expired_holder_does_not_free_its_successors_turn(redis_url: str) -> None:
    slow, next_ = replica(redis_url, hold_s=0.2), replica(redis_url, hold_s=30, wait_s=5)
    client = redis.Redis.from_url(redis_url)
    with slow.turn("n"):
        time.sleep(0.3)  # the turn expires while its holder still runs
        with next_.turn("n"):  # ... and is taken by the next
            pass
        client.set("t:turn:n", "successor", px=30_000)
    assert client.get("t:turn:n") == b"successor"  # slow's release left it alone


def test_a_turn_held_too_long_ends_the_wait_with_a_clear_error(redis_url: str) -> None:
    holder, waiter = replica(redis_url), replica(redis_url, wait_s=0.3)
    with holder.turn("n"), pytest.raises(Unavailable, match="retry"), waiter.turn("n"):
        pass
