"""Pending liveness challenges in this process's memory: for a single replica (the SQLite
store). A restart forgets them, and another replica cannot redeem them."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from bioverify.errors import ConfigurationError, Overloaded, TooManyChallenges
from bioverify.liveness.challenge import Challenge


class InMemoryChallenges:
    """``PendingChallenges`` in a dict. At most ``max_per_tenant`` pending challenges per
    tenant (one more is refused, TooManyChallenges, and nobody's are dropped for it) and
    ``max_total`` in all (a bound on memory: Overloaded beyond it). Expired ones are
    dropped first."""

    def __init__(
        self,
        *,
        max_per_tenant: int,
        max_total: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_per_tenant < 1 or max_total < 1:
            raise ConfigurationError("the pending challenge limits must be >= 1")
        self._max_per_tenant = max_per_tenant
        self._max_total = max_total
        self._clock = clock
        self._pending: OrderedDict[str, Challenge] = OrderedDict()  # about oldest first
        self._per_tenant: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, challenge: Challenge) -> None:
        with self._lock:
            self._drop_expired()
            if self._per_tenant[challenge.tenant] >= self._max_per_tenant:
                raise TooManyChallenges(too_many(self._max_per_tenant))
            if len(self._pending) >= self._max_total:
                raise Overloaded("too many liveness challenges are pending; retry later")
            self._insert(challenge)

    def get(self, challenge_id: str) -> Challenge | None:
        with self._lock:
            return self._pending.get(challenge_id)

    def take(self, challenge: Challenge, claim: str) -> bool:
        with self._lock:
            if self._pending.get(challenge.challenge_id) != challenge:
                return False
            self._remove(challenge.challenge_id)
            return self._clock() < challenge.expires_at

    def put_back(self, challenge: Challenge, claim: str) -> None:
        """Only the request that took it holds it (``take`` is atomic), so no claim is
        checked; the tenant's cap is not either (it counted the challenge when issued)."""
        with self._lock:
            if challenge.challenge_id not in self._pending and self._clock() < challenge.expires_at:
                self._insert(challenge)

    def pending(self, tenant: str | None = None) -> int:
        """How many are pending, in ``tenant`` or in all (expired ones not yet dropped too)."""
        with self._lock:
            return len(self._pending) if tenant is None else self._per_tenant[tenant]

    def close(self) -> None:
        pass

    def _insert(self, challenge: Challenge) -> None:
        self._pending[challenge.challenge_id] = challenge
        self._per_tenant[challenge.tenant] += 1

    def _remove(self, challenge_id: str) -> None:
        tenant = self._pending.pop(challenge_id).tenant
        self._per_tenant[tenant] -= 1
        if not self._per_tenant[tenant]:
            del self._per_tenant[tenant]

    def _drop_expired(self) -> None:
        """All have one lifetime, so the oldest expire first (one given back goes last: it
        waits for those before it, at most one lifetime, and is refused when redeemed)."""
        now = self._clock()
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if now < oldest.expires_at:
                return
            self._remove(oldest.challenge_id)


def too_many(limit: int) -> str:
    return (
        f"this tenant has {limit} liveness challenges pending, the most allowed; answer or "
        "let some expire before starting more"
    )
