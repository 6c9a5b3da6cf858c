"""Pending liveness challenges in this process's memory: for a single replica (the SQLite
store). A restart forgets them, and another replica cannot redeem them."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bioverify.errors import ConfigurationError, Overloaded, TooManyChallenges
from bioverify.liveness.challenge import Challenge


@dataclass
class _Held:
    challenge: Challenge
    deadline: float  # on the store's monotonic clock


class InMemoryChallenges:
    """``PendingChallenges`` in a dict. At most ``max_per_tenant`` pending challenges per
    tenant (one more is refused, TooManyChallenges, and nobody's are dropped for it) and
    ``max_total`` pending in all (a bound on memory: Overloaded beyond it). A taken challenge
    (redeemed, or burnt by a wrong answer) leaves both counts at once, so answering, rightly or
    wrongly, never fills a cap; it is remembered by its claim until it expires, so that it can
    be put back (at most ``max_total`` of them, the oldest forgotten first). Expiry is by
    ``clock``, monotonic, so a step of the wall clock (NTP) moves no deadline."""

    def __init__(
        self,
        *,
        max_per_tenant: int,
        max_total: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_per_tenant < 1 or max_total < 1:
            raise ConfigurationError("the pending challenge limits must be >= 1")
        self._max_per_tenant = max_per_tenant
        self._max_total = max_total
        self._clock = clock
        self._held: OrderedDict[str, _Held] = OrderedDict()  # pending, oldest first
        self._taken: OrderedDict[str, _Held] = OrderedDict()  # by claim, oldest first
        self._per_tenant: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, challenge: Challenge, lifetime_s: float) -> None:
        with self._lock:
            self._drop_expired()
            if self._per_tenant[challenge.tenant] >= self._max_per_tenant:
                raise TooManyChallenges(too_many(self._max_per_tenant))
            if len(self._held) >= self._max_total:
                raise Overloaded(TOO_MANY_IN_ALL)
            if challenge.challenge_id in self._held:
                raise RuntimeError("a challenge id was issued twice")
            self._held[challenge.challenge_id] = _Held(challenge, self._clock() + lifetime_s)
            self._per_tenant[challenge.tenant] += 1

    def get(self, challenge_id: str) -> Challenge | None:
        with self._lock:
            held = self._pending(challenge_id)
            return held.challenge if held is not None else None

    def take(self, challenge: Challenge, claim: str) -> bool:
        with self._lock:
            held = self._pending(challenge.challenge_id)
            if held is None or held.challenge != challenge:
                return False
            del self._held[challenge.challenge_id]
            self._count_out(challenge.tenant)
            self._taken[claim] = held
            while len(self._taken) > self._max_total:
                self._taken.popitem(last=False)  # only its put-back is lost
            return True

    def put_back(self, challenge: Challenge, claim: str) -> None:
        """The tenant's cap is not checked (it counted the challenge when issued)."""
        with self._lock:
            held = self._taken.pop(claim, None)
            if held is not None and held.challenge == challenge and self._clock() < held.deadline:
                self._held[challenge.challenge_id] = held
                self._per_tenant[challenge.tenant] += 1

    def pending(self, tenant: str | None = None) -> int:
        """How many are pending in all (expired ones not yet dropped too), or in ``tenant``."""
        with self._lock:
            return len(self._held) if tenant is None else self._per_tenant[tenant]

    def close(self) -> None:
        pass

    def _pending(self, challenge_id: str) -> _Held | None:
        held = self._held.get(challenge_id)
        if held is None or self._clock() >= held.deadline:
            return None
        return held

    def _count_out(self, tenant: str) -> None:
        self._per_tenant[tenant] -= 1
        if not self._per_tenant[tenant]:
            del self._per_tenant[tenant]

    def _drop_expired(self) -> None:
        """The issuer gives every challenge one lifetime, so the oldest expire first (one put
        back may sit out of order: it is dropped when it reaches the front, and is never
        found meanwhile, ``_pending`` checking its deadline)."""
        now = self._clock()
        while self._held:
            oldest = next(iter(self._held.values()))
            if now < oldest.deadline:
                break
            del self._held[oldest.challenge.challenge_id]
            self._count_out(oldest.challenge.tenant)
        while self._taken and now >= next(iter(self._taken.values())).deadline:
            self._taken.popitem(last=False)


TOO_MANY_IN_ALL = "too many liveness challenges are pending on this service; retry later"


def too_many(limit: int) -> str:
    return (
        f"this tenant has {limit} liveness challenges pending, the most allowed; answer or "
        "let some expire before starting more"
    )
