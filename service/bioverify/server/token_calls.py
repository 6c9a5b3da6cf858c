"""Calls in progress per API token (``MAX_CONCURRENT_RPCS_PER_TOKEN``): one client, or one
leaked token, cannot take every one of the service's ``MAX_CONCURRENT_RPCS`` slots, whatever
its calls do (heavy enrolments, live calls before their config, messages never sent). A call
counts from when its handler starts, before its message is read, until it ends; one more is
refused at once with RESOURCE_EXHAUSTED (``OVERLOADED``)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from bioverify.errors import Overloaded


class CallsPerToken:
    """At most ``limit`` calls in progress per token of ``tokens`` (their digests; 0: no
    limit). A call with no token or an unknown one is not counted: the token check refuses
    it (UNAUTHENTICATED) before it does any work."""

    def __init__(self, limit: int, tokens: Collection[str] = ()) -> None:
        self._limit = limit
        self._tokens = frozenset(tokens)
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}  # per token digest, only while above 0

    @property
    def counting(self) -> bool:
        """Whether any call is counted (a limit, and tokens to count it for)."""
        return self._limit > 0 and bool(self._tokens)

    @contextmanager
    def admitted(self, digest: str | None) -> Iterator[None]:
        """Held for the whole call of the token with ``digest`` (``auth.bearer_digest``);
        Overloaded (before anything is read) when it already has ``limit`` calls in
        progress."""
        if not self.counting or digest not in self._tokens:
            yield
            return
        with self._lock:
            held = self._calls.get(digest, 0)
            if held >= self._limit:
                raise Overloaded(
                    f"this API token already has {held} calls in progress, the most it may "
                    "have at once; retry when one has ended"
                )
            self._calls[digest] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._calls[digest] - 1
                if left:
                    self._calls[digest] = left
                else:
                    del self._calls[digest]

    def in_progress(self) -> int:
        """Calls counted now, all tokens together."""
        with self._lock:
            return sum(self._calls.values())


NO_LIMIT = CallsPerToken(0)
"""No calls counted: a service without ``MAX_CONCURRENT_RPCS_PER_TOKEN``."""
