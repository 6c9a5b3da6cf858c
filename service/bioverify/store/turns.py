"""Turns: one holder at a time per name, e.g. the enrolments of one tenant that search its
gallery for duplicates and then write (see ``Gallery.enrolment_turn``). The port, and its
in-process adapter; ``bioverify.store.redis_turns`` holds turns across replicas."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from bioverify.errors import Unavailable


@dataclass(frozen=True)
class TurnFence:
    """Proof of a turn held in a shared store: a write carrying it (``TemplateWrite.turn``)
    is applied only while the turn is still this holder's. A holder that stalled past the
    turn's hold time (and lost it to another replica) so cannot write over what the new
    holder checked."""

    key: str
    token: str


class Turns(Protocol):
    def turn(self, name: str) -> AbstractContextManager[TurnFence | None]:
        """Held by one caller at a time per ``name``; others wait for it. Yields the fence
        that writes made in the turn carry (None: turns of this process, which a holder
        cannot lose)."""
        ...


class ProcessTurns:
    """Turns among the threads of this process (a lock per name, kept)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def turn(self, name: str, *, deadline: float | None = None) -> Iterator[TurnFence | None]:
        """Waits until ``deadline`` (``time.monotonic()``; None: for as long as it takes),
        then raises Unavailable."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not lock.acquire(timeout=wait):
            raise waited_too_long()
        try:
            yield None
        finally:
            lock.release()


def waited_too_long() -> Unavailable:
    return Unavailable("another enrolment has held this tenant's turn for too long; retry")
