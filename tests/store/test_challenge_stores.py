"""The pending-challenge contract, run against the in-memory store and a real Redis server; for
Redis, two stores with their own connections stand for two replicas."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from bioverify.errors import ChallengeInvalid, Overloaded, TooManyChallenges, Unavailable
from bioverify.liveness.challenge import POSE_ACTIONS, Challenge, ChallengeIssuer
from bioverify.liveness.challenges_memory import InMemoryChallenges
from bioverify.liveness.challenges_redis import RedisChallenges, from_json, to_json
from bioverify.liveness.ports import PendingChallenges
from bioverify.store.redis_connection import connect

PER_TENANT = 5
IN_ALL = 12
Replica = Callable[[], PendingChallenges]


@pytest.fixture(params=["memory", "redis"])
def replicas(request: pytest.FixtureRequest) -> Iterator[Replica]:
    """Makes the stores of "replicas" that share their pending challenges: one store for
    memory (a replica shares nothing), a new connection to the same Redis for Redis."""
    made: list[PendingChallenges] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")

        def replica() -> PendingChallenges:
            made.append(RedisChallenges(connect(url), max_per_tenant=PER_TENANT, max_total=IN_ALL))
            return made[-1]

    else:
        shared = InMemoryChallenges(max_per_tenant=PER_TENANT, max_total=IN_ALL)

        def replica() -> PendingChallenges:
            made.append(shared)
            return shared

    yield replica
    for store in made:
        store.close()


def issuer(
    store: PendingChallenges, ttl: float = 30.0, clock: Callable[[], float] = time.time
) -> ChallengeIssuer:
    return ChallengeIssuer(store, ttl_seconds=ttl, clock=clock)


def test_a_challenge_round_trips(replicas: Replica) -> None:
    a, b = issuer(replicas()), replicas()
    issued = a.issue("bank:a%", "alice")
    assert b.get(issued.challenge_id) == issued
    assert from_json(to_json(issued)) == issued
    assert b.get("never-issued") is None


def test_issued_on_one_replica_redeemed_once_on_another(replicas: Replica) -> None:
    a, b = issuer(replicas()), issuer(replicas())
    c = a.issue("t", "alice")
    found = b.look_up(c.challenge_id, c.nonce, tenant="t", subject_id="alice")
    assert b.redeem(found).challenge == c
    for replica in (a, b):
        with pytest.raises(ChallengeInvalid, match="already used"):
            replica.look_up(c.challenge_id, c.nonce, tenant="t", subject_id="alice")
        with pytest.raises(ChallengeInvalid, match="already used"):
            replica.redeem(found)


def test_of_many_simultaneous_redeems_exactly_one_succeeds(replicas: Replica) -> None:
    """Eight threads on two replicas look the challenge up (all find it: nothing is used
    up yet), then all redeem it at once: exactly one gets it."""
    stores = [replicas(), replicas()]
    c = issuer(stores[0]).issue("t")
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def answer(i: int) -> None:
        replica = issuer(stores[i % 2])
        found = replica.look_up(c.challenge_id, c.nonce, tenant="t")
        start.wait()
        try:
            replica.redeem(found)
            outcomes.append("redeemed")
        except ChallengeInvalid:
            outcomes.append("refused")

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["redeemed"] + ["refused"] * 7


def test_a_retried_take_of_the_same_claim_still_succeeds(replicas: Replica) -> None:
    """A take whose reply was lost is sent again by the Redis client: it must not report
    the challenge as used by someone else."""
    a, b = replicas(), replicas()
    c = issuer(a).issue()
    assert a.take(c, "claim-1")
    if isinstance(a, RedisChallenges):
        assert a.take(c, "claim-1")
    assert not b.take(c, "claim-2")


def test_a_challenge_given_back_is_pending_again_on_every_replica(replicas: Replica) -> None:
    a, b = issuer(replicas()), issuer(replicas())
    c = a.issue("t")
    redemption = a.redeem(a.look_up(c.challenge_id, c.nonce, tenant="t"))
    a.give_back(redemption)
    a.give_back(redemption)  # twice: still one challenge
    assert b.redeem(b.look_up(c.challenge_id, c.nonce, tenant="t")).challenge == c
    with pytest.raises(ChallengeInvalid):
        a.look_up(c.challenge_id, c.nonce, tenant="t")


def test_the_cap_is_per_tenant(replicas: Replica) -> None:
    """A tenant at its cap is refused (on every replica) and nobody's challenges are dropped;
    redeeming one frees its place."""
    a, b = issuer(replicas()), issuer(replicas())
    other = b.issue("other")
    flood = [(a if i % 2 else b).issue("flood") for i in range(PER_TENANT)]
    for replica in (a, b):
        with pytest.raises(TooManyChallenges):
            replica.issue("flood")
    assert b.issue("other") and a.issue("")  # other tenants are not held up
    for c in (other, *flood):
        assert a.look_up(c.challenge_id, c.nonce, tenant=c.tenant) == c  # none dropped
    b.redeem(flood[0])
    a.issue("flood")


def test_the_cap_in_all_holds_against_invented_tenants(replicas: Replica) -> None:
    """Tenants made up one after another, each filled to its cap, meet the cap in all
    (Overloaded, not the tenant's TooManyChallenges), on every replica."""
    a, b = issuer(replicas()), issuer(replicas())
    issued = 0
    with pytest.raises(Overloaded) as info:
        for n in range(IN_ALL):
            for _ in range(PER_TENANT):
                (a, b)[issued % 2].issue(f"t{n}")
                issued += 1
    assert not isinstance(info.value, TooManyChallenges)
    assert info.value.reason == "OVERLOADED"
    assert issued == IN_ALL
    for replica in (a, b):
        with pytest.raises(Overloaded):
            replica.issue("someone-else")


def test_expired_challenges_are_gone_and_free_their_place(replicas: Replica) -> None:
    """A lifetime long enough for the issuing to finish however loaded the machine, then a
    wait until it is surely over."""
    ttl = 2.0
    a = issuer(replicas(), ttl=ttl)
    started = time.monotonic()
    issued = [a.issue("t") for _ in range(PER_TENANT)]
    with pytest.raises(TooManyChallenges):
        a.issue("t")
    assert time.monotonic() - started < ttl, "too slow to test: expired while issuing"
    time.sleep(max(0.0, started + ttl + 0.2 - time.monotonic()))
    with pytest.raises(ChallengeInvalid, match="expired"):
        a.look_up(issued[0].challenge_id, issued[0].nonce, tenant="t")
    assert len({a.issue("t").challenge_id for _ in range(PER_TENANT)}) == PER_TENANT


def test_expiry_is_the_stores_not_the_replicas_wall_clock(replicas: Replica) -> None:
    """A replica whose wall clock runs an hour fast (or slow) still honours a challenge
    another issued, and one it issued is honoured elsewhere: only the shown expires_at
    differs."""
    hour = 3600.0
    right = issuer(replicas())
    fast = issuer(replicas(), clock=lambda: time.time() + hour)
    slow = issuer(replicas(), clock=lambda: time.time() - hour)
    for issuing, answering in ((right, fast), (fast, slow), (slow, right)):
        c = issuing.issue("t")
        found = answering.look_up(c.challenge_id, c.nonce, tenant="t")
        assert answering.redeem(found).challenge == c


def test_redis_keys_follow_the_prefix_and_expire(redis_url: str) -> None:
    store = RedisChallenges(
        connect(redis_url), key_prefix="bv-test:", max_per_tenant=3, max_total=10
    )
    try:
        c = issuer(store, ttl=20).issue("t")
        with redis.Redis.from_url(redis_url) as raw:
            keys = sorted(k.decode() for k in raw.keys("*"))
            assert keys == [
                f"bv-test:challenge:{c.challenge_id}",
                "bv-test:challenges",
                "bv-test:challenges:t",
            ]
            assert all(0 < raw.pttl(k) <= 20_000 for k in keys)
            assert b"pickle" not in (raw.get(keys[0]) or b"")
            assert from_json(raw.get(keys[0]) or b"") == c  # JSON
    finally:
        store.close()


def test_redis_counts_expire_no_earlier_than_the_longest_lived_challenge(redis_url: str) -> None:
    """Replicas may run different lifetimes (CHALLENGE_TTL_S): a short-lived challenge
    issued after a long-lived one must not cut the counts' expiry short, or the caps would
    forget the long-lived one while it is still pending."""
    stores = [RedisChallenges(connect(redis_url), max_per_tenant=2, max_total=10) for _ in range(2)]
    try:
        long_lived = issuer(stores[0], ttl=600).issue("t")
        issuer(stores[1], ttl=1).issue("t")
        with redis.Redis.from_url(redis_url) as raw:
            for key in ("bioverify:challenges:t", "bioverify:challenges"):
                assert raw.pttl(key) > 500_000, key
        assert stores[1].get(long_lived.challenge_id) == long_lived
        with pytest.raises(TooManyChallenges):
            issuer(stores[1], ttl=1).issue("t")
        # Given back: the count's expiry is not cut short either.
        taken = issuer(stores[0], ttl=600).issue("u")
        assert stores[0].take(taken, "claim")
        issuer(stores[1], ttl=1).issue("u")
        stores[0].put_back(taken, "claim")
        with redis.Redis.from_url(redis_url) as raw:
            assert raw.pttl("bioverify:challenges:u") > 500_000
    finally:
        for store in stores:
            store.close()


def test_redis_outage_is_unavailable_without_the_address() -> None:
    store = RedisChallenges(
        connect("redis://:secret@127.0.0.1:1/0", socket_timeout=0.2, retries=0),
        max_per_tenant=3,
        max_total=10,
    )
    c = Challenge("id", "nonce", POSE_ACTIONS[:2], expires_at=time.time() + 30)
    try:
        for call in (lambda: store.add(c, 30), lambda: store.get("id"), lambda: store.take(c, "x")):
            with pytest.raises(Unavailable) as info:
                call()
            assert "liveness challenge store (Redis) is unreachable" in info.value.message
            assert "127.0.0.1" not in info.value.message and "secret" not in info.value.message
    finally:
        store.close()


def test_answering_rightly_or_wrongly_never_fills_a_cap(replicas: Replica) -> None:
    """A challenge answered (redeemed) or burnt by a wrong nonce leaves the counts at once:
    a tenant issuing and answering in a loop, well past both caps, never locks itself or
    anyone else out (the in-memory store kept taken ones in the all-tenant count)."""
    a = issuer(replicas())
    for _ in range(2 * IN_ALL):
        burnt = a.issue("busy")
        with pytest.raises(ChallengeInvalid):
            a.look_up(burnt.challenge_id, "a wrong nonce", tenant="busy", subject_id="")
        used = a.issue("busy")
        a.redeem(a.look_up(used.challenge_id, used.nonce, tenant="busy", subject_id=""))
    assert a.issue("another tenant").tenant == "another tenant"
