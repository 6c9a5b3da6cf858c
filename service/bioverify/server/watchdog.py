"""A daemon thread that runs one check at a fixed period until stopped (the live-call and
request-read watchdogs)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, name: str, check: Callable[[], object], period_s: float) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.name = name
        self._check = check
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            try:
                self._check()
            except Exception:  # one bad round (a context that fails) must not end the watch
                logger.exception("%s failed", self.name)
