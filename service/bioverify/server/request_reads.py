"""A time limit on receiving a unary call's request message.

gRPC takes a call into one of the server's ``MAX_CONCURRENT_RPCS`` slots when its headers
arrive and keeps it there until it ends, however long the client takes to send the request
message, and HTTP/2 has no receive timeout of its own. So a client with a valid token could
open calls and never send their messages, holding every slot. Unary calls are therefore
served as request streams (``ErrorMappingInterceptor``): the handler reads the one message
itself, inside ``RequestReads.awaiting``, and a watchdog cancels a call whose message has not
arrived ``timeout_s`` after the call began (the client sees CANCELLED), freeing its slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from bioverify.server.watchdog import Watchdog

logger = logging.getLogger(__name__)


class RequestReads:
    def __init__(self, timeout_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[grpc.ServicerContext, float]] = {}
        self._next_id = 0
        self._watchdog = Watchdog(
            "request-read-watchdog", self.cancel_late, period_s=min(1.0, timeout_s / 4)
        )

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def awaiting(self, context: grpc.ServicerContext) -> Iterator[None]:
        """Around the read of a call's request message: the call is cancelled by
        ``cancel_late`` if the message has not come ``timeout_s`` after this began."""
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._waiting[key] = (context, self._clock())
        try:
            yield
        finally:
            with self._lock:
                self._waiting.pop(key, None)

    def cancel_late(self) -> int:
        """Cancel the calls whose message is ``timeout_s`` late; returns how many."""
        now = self._clock()
        with self._lock:
            late = [
                key for key, (_, began) in self._waiting.items() if now - began >= self.timeout_s
            ]
            contexts = [self._waiting.pop(key)[0] for key in late]
        for context in contexts:
            logger.info(
                "call from %s cancelled: its request message did not come within %.0f s",
                context.peer(),
                self.timeout_s,
            )
            context.cancel()
        return len(contexts)

    def start(self) -> None:
        """Start the watchdog thread."""
        self._watchdog.start()

    def stop(self) -> None:
        self._watchdog.stop()
