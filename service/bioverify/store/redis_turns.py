"""Turns held across every replica of a Redis store: a Redis key per name, holding a random
token while a holder has the turn, so that enrolments of one tenant on two replicas search
for duplicates and write in turn, as they do within one process.

The key expires ``hold_s`` after it was last renewed: its holder renews it every third of
that while it works (a catch-up that rebuilds a large gallery can take longer than an
enrolment's milliseconds), and a holder that dies frees it within ``hold_s``. Taking, renewing
and releasing check the token (Lua), so a holder never frees or extends another's turn, and a
take whose reply was lost (the client retries) finds its own token and goes on."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from bioverify.errors import Unavailable
from bioverify.store.redis_connection import RedisErrors, key_part
from bioverify.store.turns import ProcessTurns, TurnFence, waited_too_long

logger = logging.getLogger(__name__)

STOP_WAIT_S = 0.2

# Sets the key when it is free, or already this holder's (a retried take).
_TAKE_LUA = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Extends the key only while it still holds this holder's token.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Deletes the key only while it still holds this holder's token.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTurns:
    """``Turns`` in Redis. Threads of this process queue on a local lock first, so only one
    of them at a time polls Redis for a name; one deadline (``wait_s``) covers both waits.
    ``client``: the template store's (see ``RedisTemplateStore.turns``), closed with it."""

    def __init__(
        self,
        client: redis.Redis,
        errors: RedisErrors,
        *,
        key_prefix: str = "bioverify:",
        hold_s: float = 30.0,
        wait_s: float = 35.0,
    ) -> None:
        self._p = key_prefix
        self._hold_ms = max(1, round(hold_s * 1000))
        self._wait_s = wait_s
        self._local = ProcessTurns()
        self._errors = errors
        self._take_script = client.register_script(_TAKE_LUA)
        self._renew_script = client.register_script(_RENEW_LUA)
        self._release_script = client.register_script(_RELEASE_LUA)

    @contextmanager
    def turn(self, name: str) -> Iterator[TurnFence | None]:
        key, token = f"{self._p}turn:{key_part(name)}", uuid.uuid4().hex
        deadline = time.monotonic() + self._wait_s
        with self._local.turn(name, deadline=deadline):
            self._take(key, token, deadline)
            renewal: _Renewal | None = None
            try:
                renewal = _Renewal(lambda: self._renew(key, token), self._hold_ms / 3000)
                yield TurnFence(key, token)
            finally:
                if renewal is not None:
                    renewal.stop()
                self._free(key, token)

    def _take(self, key: str, token: str, deadline: float) -> None:
        pause = 0.002
        while True:
            try:
                with self._errors.translate():
                    if self._take_script(keys=[key], args=[token, self._hold_ms]):
                        return
            except Unavailable:
                self._free(key, token)  # a take Redis applied but whose reply was lost
                raise
            if time.monotonic() >= deadline:
                raise waited_too_long()
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.05)

    def _renew(self, key: str, token: str) -> bool:
        with self._errors.translate():
            return bool(self._renew_script(keys=[key], args=[token, self._hold_ms]))

    def _free(self, key: str, token: str) -> None:
        """Release the turn. When Redis cannot take the release (unreachable, busy, a
        refused command) the turn frees itself after its hold time, and the holder's work
        (done by now) does not fail for it."""
        try:
            with self._errors.translate():
                released = self._release_script(keys=[key], args=[token])
        except (Unavailable, redis.exceptions.RedisError) as exc:
            logger.warning(
                "could not free a turn (%s); it frees itself in %d ms",
                type(exc).__name__,
                self._hold_ms,
            )
            return
        if not released:
            logger.debug("a turn had expired or was not taken when it was freed")


class _Renewal:
    """Renews a held turn every ``every_s`` in a thread of its own until stopped."""

    def __init__(self, renew: Callable[[], bool], every_s: float) -> None:
        self._renew = renew
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="turn-renewal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                renewed = self._renew()
            except Exception as exc:  # tried again next period: the turn lasts 3 periods
                logger.warning("could not renew a turn (%s); trying again", type(exc).__name__)
                continue
            if not renewed:
                logger.warning(
                    "a turn expired while its holder still worked: another replica may have "
                    "entered it"
                )
                return

    def stop(self) -> None:
        """Ends the renewals without waiting for one stuck on Redis: a late one cannot extend
        another holder's turn (it checks the token)."""
        self._stop.set()
        self._thread.join(timeout=STOP_WAIT_S)
