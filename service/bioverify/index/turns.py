"""Turns: one holder at a time per name, e.g. the enrolments of one tenant that search its
gallery for duplicates and then write (see ``Gallery.enrolment_turn``). The port, and its
in-process adapter; ``bioverify.store.redis_turns`` holds turns across replicas."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Turns(Protocol):
    def turn(self, name: str) -> AbstractContextManager[None]:
        """Held by one caller at a time per ``name``; others wait for it."""
        ...


class ProcessTurns:
    """Turns among the threads of this process (a lock per name, kept)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def turn(self, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield
