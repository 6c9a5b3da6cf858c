"""Admission and idle control for live-call streams (``VerifyVoiceStream``).

The synchronous gRPC server gives every RPC one of its ``RPC_THREADS`` for as long as the RPC
lasts, and a live call lasts as long as the phone call. Without a limit, as many calls as
there are threads (or as many idle streams from a careless or hostile client) would leave no
thread for anything else: unary requests and health checks would queue until their
deadlines. So at most ``max_calls`` live calls run at once (more are refused with
RESOURCE_EXHAUSTED at once; with ``max_per_tenant``, at most that many of one tenant), the
limit stays below the thread count (see ``Settings``), and
a call whose audio stops for ``idle_s`` seconds is cancelled, freeing its thread. A call
carries audio in real time, so "stops" means: less than ``MIN_AUDIO_RATE`` seconds of audio
per second since it was last heard (a client dripping a byte now and then, which
``MAX_CALL_SECONDS`` would never end, holds no slot for long). The time the service itself
spends on the call's messages does not count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from bioverify.errors import Overloaded
from bioverify.server.watchdog import Watchdog

logger = logging.getLogger(__name__)

MIN_AUDIO_RATE = 0.5
"""Seconds of audio per second of wall time below which a call counts as silent."""
CONFIG_S = 5.0
"""Seconds a call may take to send its config (its first message): a client sends it at
once, so a call still without one is not a phone call starting but a slot being held."""


class LiveCall:
    """One admitted call: ``heard()`` when a message arrives; ``busy()`` around the work on
    it, during which the call is never idle (a slow inference queue is not a silent caller)."""

    def __init__(self, context: grpc.ServicerContext, now: float) -> None:
        self.context = context
        self.last_heard = now  # moved on by the service's own work on the call
        self.heard_audio_s = 0.0  # the call's audio at last_heard
        self.busy_depth = 0
        self.busy_since = 0.0
        self.cancelled = False
        self.tenant: str | None = None  # once its config named one (``join_tenant``)


class LiveCalls:
    def __init__(
        self,
        max_calls: int,
        idle_s: float,
        *,
        max_per_tenant: int = 0,
        config_s: float = CONFIG_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_per_tenant``: the most calls one tenant may hold at once (0: no cap of its
        own), so that one tenant's calls cannot take every slot from the others. A call counts
        for its tenant once its config names it; before that it counts for no tenant, so
        ``config_s`` is short: a call whose config has not come this long after it opened is
        cancelled (``idle_s`` if that is shorter)."""
        if max_calls < 1 or idle_s <= 0 or max_per_tenant < 0 or config_s <= 0:
            raise ValueError(
                "max_calls must be >= 1, idle_s and config_s positive, max_per_tenant >= 0"
            )
        self.max_calls = max_calls
        self.max_per_tenant = max_per_tenant
        self.idle_s = idle_s
        self.config_s = min(config_s, idle_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: set[LiveCall] = set()
        self._watchdog = Watchdog(
            "live-call-watchdog", self.cancel_idle, period_s=min(1.0, self.config_s / 4)
        )

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._calls)

    def start(self) -> None:
        """Start the watchdog thread that cancels idle calls."""
        self._watchdog.start()

    def stop(self) -> None:
        self._watchdog.stop()

    @contextmanager
    def admitted(self, context: grpc.ServicerContext) -> Iterator[LiveCall]:
        """Hold a live-call slot while the call runs (until its handler ends, also after a
        cancellation). Raises ``Overloaded`` when every slot is taken."""
        with self._lock:
            if len(self._calls) >= self.max_calls:
                raise Overloaded(
                    f"{self.max_calls} live calls are already in progress, the most this "
                    "service takes at once; retry shortly or call another replica"
                )
            call = LiveCall(context, self._clock())
            self._calls.add(call)
        try:
            yield call
        finally:
            with self._lock:
                self._calls.discard(call)

    def join_tenant(self, call: LiveCall, tenant: str) -> None:
        """The admitted ``call`` acts on ``tenant`` (its config named it). Raises
        ``Overloaded`` when that tenant already holds ``max_per_tenant`` calls."""
        with self._lock:
            if self.max_per_tenant:
                held = sum(1 for other in self._calls if other.tenant == tenant)
                if held >= self.max_per_tenant:
                    raise Overloaded(
                        f"tenant {tenant!r} already has {held} live calls in progress, the "
                        "most one tenant may hold at once; retry shortly"
                    )
            call.tenant = tenant

    def heard(self, call: LiveCall, audio_s: float) -> None:
        """The call has carried ``audio_s`` seconds of audio so far: it is heard (not idle)
        when that grew by at least ``MIN_AUDIO_RATE`` of the time since it was last heard."""
        with self._lock:
            now = self._clock()
            if audio_s - call.heard_audio_s >= MIN_AUDIO_RATE * (now - call.last_heard):
                call.last_heard = now
                call.heard_audio_s = audio_s

    @contextmanager
    def busy(self, call: LiveCall) -> Iterator[None]:
        """Around the service's work on a message: that time is not the caller's silence."""
        with self._lock:
            if call.busy_depth == 0:
                call.busy_since = self._clock()
            call.busy_depth += 1
        try:
            yield
        finally:
            with self._lock:
                call.busy_depth -= 1
                if call.busy_depth == 0:
                    call.last_heard += self._clock() - call.busy_since

    def cancel_idle(self) -> int:
        """Cancel the calls waiting for audio for ``idle_s`` or longer, and those waiting for
        their config for ``config_s``; returns how many."""
        now = self._clock()
        with self._lock:
            idle = [
                call
                for call in self._calls
                if not call.cancelled
                and call.busy_depth == 0
                and now - call.last_heard
                >= (self.idle_s if call.tenant is not None else self.config_s)
            ]
            for call in idle:
                call.cancelled = True
        for call in idle:
            if call.tenant is None:
                logger.info(
                    "live call from %s cancelled: no config within %.0f s",
                    call.context.peer(),
                    self.config_s,
                )
            else:
                logger.info(
                    "live call from %s cancelled: no audio for %.0f s",
                    call.context.peer(),
                    self.idle_s,
                )
            call.context.cancel()
        return len(idle)
