"""Turns held in Redis (``RedisTurns``), on a real redis-server: one holder at a time per
name across clients (replicas), a holder's turn kept while it works past its hold time, a dead
holder's turn freed after it, a holder whose turn was lost never freeing its successor's, a
retried take finding its own token, a wait that ends in a clear error, and a write refused
once its turn was lost."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis

from bioverify.errors import Unavailable
from bioverify.index.gallery import Gallery
from bioverify.scoring import Calibration, OperatingPoint
from bioverify.store.ports import TemplateWrite
from bioverify.store.redis_connection import RedisErrors, connect
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.redis_turns import RedisTurns
from bioverify.store.turns import TurnFence
from bioverify.usecases.common import save_enrollment

LOG = logging.getLogger(__name__)
KEY = "t:turn:enrolment%3Aface%3Abank"  # the key of the turn "enrolment:face:bank"


def replica(url: str, **kwargs: float) -> RedisTurns:
    """Turns on a connection of their own, as another replica's."""
    return RedisTurns(connect(url), RedisErrors("the test turns", LOG), key_prefix="t:", **kwargs)


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


def test_a_holder_working_past_its_hold_time_keeps_its_turn(redis_url: str) -> None:
    holder, waiter = replica(redis_url, hold_s=0.3), replica(redis_url, wait_s=0.6)
    with holder.turn("enrolment:face:bank"):
        time.sleep(0.8)  # more than twice the hold time: renewed meanwhile
        with pytest.raises(Unavailable, match="retry"), waiter.turn("enrolment:face:bank"):
            pass


def test_a_dead_holders_turn_is_freed_after_its_hold_time(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).set(KEY, "token-of-a-crashed-replica", px=300)
    started = time.monotonic()
    with replica(redis_url, wait_s=5).turn("enrolment:face:bank"):
        waited = time.monotonic() - started
    assert 0.2 < waited < 3


def test_a_holder_that_lost_its_turn_does_not_free_its_successors(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with replica(redis_url).turn("enrolment:face:bank"):
        client.set(KEY, "successor", px=30_000)  # its key expired and another took the turn
    assert client.get(KEY) == b"successor"  # the first holder's release left it alone


def test_a_retried_take_finds_its_own_token(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set(KEY, "mine", px=30_000)  # a take Redis applied, whose reply was lost
    monkeypatch.setattr(uuid, "uuid4", lambda: SimpleNamespace(hex="mine"))
    started = time.monotonic()
    with replica(redis_url, wait_s=5).turn("enrolment:face:bank"):
        assert client.get(KEY) == b"mine"
    assert time.monotonic() - started < 1  # not waited out as another holder's turn
    assert client.get(KEY) is None  # and freed as its own


def test_a_turn_held_too_long_ends_the_wait_with_a_clear_error(redis_url: str) -> None:
    holder, waiter = replica(redis_url), replica(redis_url, wait_s=0.3)
    with holder.turn("n"), pytest.raises(Unavailable, match="retry"), waiter.turn("n"):
        pass
    local = replica(redis_url, wait_s=0.3)  # a second thread of one replica waits as long
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with local.turn("m"):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(5)
    started = time.monotonic()
    with pytest.raises(Unavailable), local.turn("m"):
        pass
    assert time.monotonic() - started < 2
    release.set()
    thread.join(5)


def test_redis_errors_neither_end_the_renewals_nor_fail_finished_work(redis_url: str) -> None:
    """A renewal or a release that Redis refuses (BUSY running a script, NOPERM after an ACL
    change) is logged: the holder keeps its turn, and its work stands."""
    holder, waiter = replica(redis_url, hold_s=0.3), replica(redis_url, wait_s=0.6)
    renew = holder._renew_script
    refusals = {"renew": 1}

    def busy_once(*args: Any, **kwargs: Any) -> Any:
        if refusals["renew"]:
            refusals["renew"] -= 1
            raise redis.exceptions.ResponseError("BUSY Redis is busy running a script")
        return renew(*args, **kwargs)

    def no_permission(*args: Any, **kwargs: Any) -> Any:
        raise redis.exceptions.NoPermissionError("NOPERM this user has no permissions")

    holder._renew_script = busy_once  # type: ignore[assignment]
    holder._release_script = no_permission  # type: ignore[assignment]
    with holder.turn("enrolment:face:bank"):
        time.sleep(0.8)  # the first renewal was refused, the next ones kept the turn
        with pytest.raises(Unavailable), waiter.turn("enrolment:face:bank"):
            pass
    assert refusals["renew"] == 0


def test_a_holder_that_lost_its_turn_cannot_write_in_it(redis_url: str) -> None:
    """A replica that stalled past the hold time (its renewals stalled too) lost the turn to
    another: its write, made after the duplicate search the new holder can no longer rely
    on, is refused with nothing saved; a write in a held turn goes through."""
    store = RedisTemplateStore(redis_url, key_prefix="t:")
    client = redis.Redis.from_url(redis_url)
    vector = np.full((1, 4), 0.5, np.float32)

    def write(fence: TurnFence | None, subject_id: str) -> TemplateWrite:
        metadata = {"display_name": subject_id.title()}
        return TemplateWrite("bank", subject_id, "face", "m", vector, metadata, turn=fence)

    try:
        turns = replica(redis_url)
        with turns.turn("enrolment:face:bank") as fence:
            assert fence is not None and fence.key == KEY
            store.save(write(fence, "alice"))  # held: applied
            client.set(KEY, "successor", px=30_000)  # the stalled holder's turn was taken
            with pytest.raises(Unavailable, match="another enrolment took it"):
                store.save(write(fence, "mallory"))
            with pytest.raises(ValueError, match="save each one"):  # not one transaction
                store.save_many([write(fence, "mallory")])
        listed = store.list_subjects("bank", limit=10)
        assert [(r.subject_id, dict(r.metadata)) for r in listed] == [
            ("alice", {"display_name": "Alice"})
        ]
        store.save(write(None, "bob"))  # a write outside any turn (e.g. seal-templates)
    finally:
        store.close()


class StolenTurns:
    """Turns (fault injector) whose every turn another replica takes as soon as it is
    entered, as if this holder had stalled past its hold time at once."""

    def __init__(self, turns: RedisTurns, client: redis.Redis) -> None:
        self._turns, self._client = turns, client

    @contextmanager
    def turn(self, name: str) -> Iterator[TurnFence | None]:
        with self._turns.turn(name) as fence:
            assert fence is not None
            self._client.set(fence.key, "successor", px=30_000)
            yield fence


def test_an_enrolment_writes_only_in_the_turn_it_searched_in(redis_url: str) -> None:
    """``save_enrollment`` hands its turn's fence to the store."""
    store = RedisTemplateStore(redis_url, key_prefix="t:")
    stolen = StolenTurns(replica(redis_url), redis.Redis.from_url(redis_url))
    gallery = Gallery("face", "m", 4, turns=stolen)
    try:
        gallery.rebuild(store)
        with pytest.raises(Unavailable, match="another enrolment took it"):
            save_enrollment(
                store,
                gallery,
                TemplateWrite("bank", "alice", "face", "m", np.full((1, 4), 0.5, np.float32)),
                calibration=Calibration(slope=10.0, intercept=-5.0),
                point=OperatingPoint("default", 1e-3, 0.5),
                refuse_duplicates=True,
                dry_run=False,
            )
        assert store.list_subjects("bank", limit=10) == []
    finally:
        store.close()
