"""Pending liveness challenges in Redis, shared by every replica of a Redis store: a challenge
started on one replica is answered on any other, and survives a restart of either.

Keys (``P`` is ``REDIS_KEY_PREFIX``, the tenant escaped as in the template store)::

    P challenge:<challenge_id>    the challenge as JSON, or ``taken:<claim>`` once taken;
                                  expires with the challenge (PX), either way
    P challenges:<tenant>         zset of the tenant's pending challenge ids, scored by expiry
                                  (ms, Redis's clock), to count them against the cap

Each operation is one Lua script, so it is atomic across replicas: ``add`` counts the tenant's
unexpired challenges and SETs the new one NX with its lifetime; ``take`` swaps the JSON for
its claim, so exactly one caller gets it (a command retried by redis-py after a lost reply
finds its own claim and still succeeds); ``put_back`` restores the JSON if its claim is still
there, for the challenge's remaining lifetime.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import redis

from bioverify.errors import ConfigurationError, TooManyChallenges
from bioverify.liveness.challenge import Action, Challenge
from bioverify.liveness.challenges_memory import too_many
from bioverify.store.redis_connection import RedisErrors, key_part

logger = logging.getLogger(__name__)

_TAKEN = "taken:"

# KEYS: challenge, tenant zset. ARGV: JSON, lifetime ms, cap, challenge id.
# Returns 1 (added), 0 (the tenant is at its cap), -1 (the id exists: never, ids are random).
_ADD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return -1 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: challenge, tenant zset. ARGV: 'taken:<claim>', challenge id. 1: taken by this claim.
_TAKE_LUA = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 1 end
if (not v) or string.sub(v, 1, 6) == 'taken:' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: challenge, tenant zset. ARGV: 'taken:<claim>', JSON, challenge id.
_PUT_BACK_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""


class RedisChallenges:
    """``PendingChallenges`` in Redis, at most ``max_per_tenant`` pending per tenant (one
    more is refused with TooManyChallenges; nobody's are dropped for it). Expiry is Redis's
    (PX), so replicas agree on it whatever their clocks. ``client``: built by
    ``store.redis_connection.connect`` from the store's settings; closed by ``close``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str = "bioverify:",
        max_per_tenant: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: wall clock, only to turn ``expires_at`` into a lifetime."""
        if max_per_tenant < 1:
            raise ConfigurationError("the pending challenge limit must be >= 1")
        self._redis = client
        self._p = key_prefix
        self._max_per_tenant = max_per_tenant
        self._clock = clock
        self._errors = RedisErrors("the liveness challenge store (Redis)", logger)
        self._add = client.register_script(_ADD_LUA)
        self._take = client.register_script(_TAKE_LUA)
        self._put_back = client.register_script(_PUT_BACK_LUA)

    def add(self, challenge: Challenge) -> None:
        lifetime_ms = math.ceil((challenge.expires_at - self._clock()) * 1000)
        if lifetime_ms <= 0:
            return  # expired already: nothing to keep
        with self._errors.translate():
            added = self._add(
                keys=self._keys(challenge),
                args=[
                    to_json(challenge),
                    lifetime_ms,
                    self._max_per_tenant,
                    challenge.challenge_id,
                ],
            )
        if int(added) == 0:
            raise TooManyChallenges(too_many(self._max_per_tenant))
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
