"""Admission and idle control for live-call streams (``VerifyVoiceStream``).

The synchronous gRPC server gives every RPC one of its ``RPC_THREADS`` for as long as the RPC
lasts, and a live call lasts as long as the phone call. Without a limit, as many calls as
there are threads (or as many idle streams from a careless or hostile client) would leave no
thread for anything else: unary requests and health checks would queue until their
deadlines. So at most ``max_calls`` live calls run at once (more are refused with
RESOURCE_EXHAUSTED at once), the limit stays below the thread count (see ``Settings``), and
a call that sends no message for ``idle_s`` seconds is cancelled, freeing its thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from bioverify.errors import Overloaded

logger = logging.getLogger(__name__)


class LiveCalls:
    def __init__(
        self, max_calls: int, idle_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_calls < 1 or idle_s <= 0:
            raise ValueError("max_calls must be >= 1 and idle_s positive")
        self.max_calls = max_calls
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_heard: dict[int, tuple[float, grpc.ServicerContext]] = {}
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._last_heard)

    def start(self) -> None:
        """Start the watchdog thread that cancels idle calls."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="live-call-watchdog", daemon=True
            )
            self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()

    @contextmanager
    def admitted(self, context: grpc.ServicerContext) -> Iterator[Callable[[], None]]:
        """Hold a live-call slot while the call runs; yields ``heard()``, to be called on each
        message received. Raises ``Overloaded`` when every slot is taken."""
        key = id(context)
        with self._lock:
            if len(self._last_heard) >= self.max_calls:
                raise Overloaded(
                    f"{self.max_calls} live calls are already in progress, the most this "
                    "service takes at once; retry shortly or call another replica"
                )
            self._last_heard[key] = (self._clock(), context)

        def heard() -> None:
            with self._lock:
                self._last_heard[key] = (self._clock(), context)

        try:
            yield heard
        finally:
            with self._lock:
                self._last_heard.pop(key, None)

    def cancel_idle(self) -> int:
        """Cancel the calls silent for ``idle_s`` or longer; returns how many."""
        now = self._clock()
        with self._lock:
            idle = [
                (key, ctx)
                for key, (heard, ctx) in self._last_heard.items()
                if now - heard >= self.idle_s
            ]
            for key, _ in idle:
                del self._last_heard[key]  # its slot is free at once
        for _, ctx in idle:
            logger.info("live call from %s cancelled: no audio for %.0f s", ctx.peer(), self.idle_s)
            ctx.cancel()
        return len(idle)

    def _watch(self) -> None:
        period = min(1.0, self.idle_s / 4)
        while not self._stop.wait(period):
            try:
                self.cancel_idle()
            except Exception:  # the watchdog must outlive one bad context
                logger.exception("live-call watchdog failed")
