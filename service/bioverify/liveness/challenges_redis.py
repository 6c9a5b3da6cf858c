"""Pending liveness challenges in Redis, shared by every replica of a Redis store: a challenge
started on one replica is answered on any other, and survives a restart of either.

Keys (``P`` is ``REDIS_KEY_PREFIX``, the tenant escaped as in the template store)::

    P challenge:<challenge_id>    the challenge as JSON, or ``taken:<claim>`` once taken;
                                  expires with the challenge (PX), either way
    P challenges:<tenant>         zset of the tenant's pending challenge ids, scored by expiry
                                  (ms, Redis's clock), to count them against the tenant's cap
    P challenges                  the same of every tenant's, against the cap in all

Each operation is one Lua script, so it is atomic across replicas: ``add`` counts the tenant's
and everyone's unexpired challenges and SETs the new one NX with its lifetime; ``take`` swaps
the JSON for its claim, so exactly one caller gets it (a command retried by redis-py after a
lost reply finds its own claim and still succeeds); ``put_back`` restores the JSON if its
claim is still there, for the challenge's remaining lifetime. A zset's expiry is only ever
extended (replicas may run different lifetimes), so it outlives every id it holds.

Expiry is the key's TTL alone: a challenge key that exists has not expired, whatever the
replicas' clocks say. ``KEEPTTL`` needs Redis 6.0 or later.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import redis

from bioverify.errors import ConfigurationError, Overloaded, TooManyChallenges
from bioverify.liveness.challenge import Action, Challenge
from bioverify.liveness.challenges_memory import TOO_MANY_IN_ALL, too_many
from bioverify.store.redis_connection import RedisErrors, key_part

logger = logging.getLogger(__name__)

_TAKEN = "taken:"

_NOW_AND_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS: challenge, tenant zset, zset of all. ARGV: JSON, lifetime ms, tenant cap, cap in all,
# challenge id. Returns 1 (added), 0 (the tenant is at its cap), -2 (all are at the cap in
# all), -1 (the id exists: never, ids are random).
_ADD_LUA = (
    _NOW_AND_EXTEND
    + """
local ms = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return -2 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ms, 'NX') then return -1 end
redis.call('ZADD', KEYS[2], now + ms, ARGV[5])
redis.call('ZADD', KEYS[3], now + ms, ARGV[5])
extend(KEYS[2], ms)
extend(KEYS[3], ms)
return 1
"""
)

# KEYS: challenge, tenant zset, zset of all. ARGV: 'taken:<claim>', challenge id.
# 1: taken by this claim.
_TAKE_LUA = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 1 end
if (not v) or string.sub(v, 1, 6) == 'taken:' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: challenge, tenant zset, zset of all. ARGV: 'taken:<claim>', JSON, challenge id.
_PUT_BACK_LUA = (
    _NOW_AND_EXTEND
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
extend(KEYS[2], ttl)
extend(KEYS[3], ttl)
return 1
"""
)


class RedisChallenges:
    """``PendingChallenges`` in Redis, at most ``max_per_tenant`` pending per tenant (one
    more is refused with TooManyChallenges; nobody's are dropped for it) and ``max_total`` in
    all (Overloaded beyond it). Expiry is Redis's (PX), so replicas agree on it whatever their
    clocks. ``client``: built by ``store.redis_connection.connect`` from the store's settings;
    closed by ``close``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str = "bioverify:",
        max_per_tenant: int,
        max_total: int,
    ) -> None:
        if max_per_tenant < 1 or max_total < 1:
            raise ConfigurationError("the pending challenge limits must be >= 1")
        self._redis = client
        self._p = key_prefix
        self._max_per_tenant = max_per_tenant
        self._max_total = max_total
        self._errors = RedisErrors("the liveness challenge store (Redis)", logger)
        self._add = client.register_script(_ADD_LUA)
        self._take = client.register_script(_TAKE_LUA)
        self._put_back = client.register_script(_PUT_BACK_LUA)

    def add(self, challenge: Challenge, lifetime_s: float) -> None:
        lifetime_ms = math.ceil(lifetime_s * 1000)
        if lifetime_ms <= 0:
            return  # expired already: nothing to keep
        with self._errors.translate():
            added = self._add(
                keys=self._keys(challenge),
                args=[
                    to_json(challenge),
                    lifetime_ms,
                    self._max_per_tenant,
                    self._max_total,
                    challenge.challenge_id,
                ],
            )
        if int(added) == 0:
            raise TooManyChallenges(too_many(self._max_per_tenant))
        if int(added) == -2:
            raise Overloaded(TOO_MANY_IN_ALL)
        if int(added) < 0:
            raise RuntimeError("a challenge id was issued twice")

    def get(self, challenge_id: str) -> Challenge | None:
        with self._errors.translate():
            value: Any = self._redis.get(self._challenge_key(challenge_id))
        if value is None or value.startswith(_TAKEN.encode()):
            return None
        return from_json(value)

    def take(self, challenge: Challenge, claim: str) -> bool:
        with self._errors.translate():
            taken = self._take(
                keys=self._keys(challenge), args=[_TAKEN + claim, challenge.challenge_id]
            )
        return int(taken) == 1

    def put_back(self, challenge: Challenge, claim: str) -> None:
        with self._errors.translate():
            self._put_back(
                keys=self._keys(challenge),
                args=[_TAKEN + claim, to_json(challenge), challenge.challenge_id],
            )

    def close(self) -> None:
        self._redis.close()

    def _challenge_key(self, challenge_id: str) -> str:
        return f"{self._p}challenge:{challenge_id}"

    def _keys(self, challenge: Challenge) -> list[str]:
        return [
            self._challenge_key(challenge.challenge_id),
            f"{self._p}challenges:{key_part(challenge.tenant)}",
            f"{self._p}challenges",
        ]


def to_json(challenge: Challenge) -> str:
    return json.dumps(
        {
            "challenge_id": challenge.challenge_id,
            "nonce": challenge.nonce,
            "actions": [a.value for a in challenge.actions],
            "expires_at": challenge.expires_at,
            "tenant": challenge.tenant,
            "subject_id": challenge.subject_id,
        },
        separators=(",", ":"),
    )


def from_json(data: bytes | str) -> Challenge:
    fields = json.loads(data)
    return Challenge(
        challenge_id=str(fields["challenge_id"]),
        nonce=str(fields["nonce"]),
        actions=tuple(Action(a) for a in fields["actions"]),
        expires_at=float(fields["expires_at"]),
        tenant=str(fields["tenant"]),
        subject_id=str(fields["subject_id"]),
    )
