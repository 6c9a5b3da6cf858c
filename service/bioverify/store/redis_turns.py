"""Turns held across every replica of a Redis store: a Redis key per name, set only when
absent (``SET NX PX``) with a random token and removed only by its holder, so that enrolments
of one tenant on two replicas search for duplicates and write in turn, as they do within one
process. A holder that dies frees its turn after ``hold_s``; a turn held longer than that by a
live holder (a stalled process) can be taken by another, so ``hold_s`` is set far above an
enrolment's search and write (milliseconds)."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from bioverify.errors import Unavailable
from bioverify.index.turns import ProcessTurns
from bioverify.store.redis_connection import RedisErrors, key_part

logger = logging.getLogger(__name__)

# Deletes the key only while it still holds this holder's token.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTurns:
    """``Turns`` in Redis. Threads of this process queue on a local turn first, so only one
    of them at a time polls Redis for a name. ``client``: the template store's (see
    ``RedisTemplateStore.turns``), closed with it."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str = "bioverify:",
        hold_s: float = 30.0,
        wait_s: float = 35.0,
    ) -> None:
        self._redis = client
        self._p = key_prefix
        self._hold_ms = max(1, round(hold_s * 1000))
        self._wait_s = wait_s
        self._local = ProcessTurns()
        self._errors = RedisErrors("the template store (Redis)", logger)
        self._release = client.register_script(_RELEASE_LUA)

    @contextmanager
    def turn(self, name: str) -> Iterator[None]:
        key, token = f"{self._p}turn:{key_part(name)}", uuid.uuid4().hex
        with self._local.turn(name):
            self._take(key, token)
            try:
                yield
            finally:
                self._free(key, token)

    def _free(self, key: str, token: str) -> None:
        """Release the turn; when Redis cannot be reached, it frees itself after its hold
        time, and the holder's work (done by now) does not fail for it."""
        try:
            with self._errors.translate():
                self._release(keys=[key], args=[token])
        except Unavailable:
            logger.warning(
                "could not free an enrolment turn; it frees itself in %d ms", self._hold_ms
            )

    def _take(self, key: str, token: str) -> None:
        deadline = time.monotonic() + self._wait_s
        pause = 0.002
        while True:
            with self._errors.translate():
                if self._redis.set(key, token, nx=True, px=self._hold_ms):
                    return
            if time.monotonic() >= deadline:
                raise Unavailable(
                    "another replica has been enrolling into this tenant for too long; retry"
                )
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.05)
