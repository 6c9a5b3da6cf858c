"""Fault injectors around a service's template store (what no user would run): they let a test
put another replica's write between an enrolment's read of a template and its own write."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bioverify.server import app as app_module
from bioverify.settings import Settings
from bioverify.store.ports import Template, TemplateStore, TemplateWrite
from bioverify.store.sqlite_store import SqliteTemplateStore

RivalVector = Callable[[TemplateWrite], npt.NDArray[np.float32]]


def someone_else(write: TemplateWrite) -> npt.NDArray[np.float32]:
    """A unit vector unlike any real sample: a template of another person."""
    vector = np.random.default_rng(0).normal(size=(1, write.new_samples.shape[1]))
    out: npt.NDArray[np.float32] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return out


def same_person(write: TemplateWrite) -> npt.NDArray[np.float32]:
    """The write's own first sample: another enrolment of the same person."""
    return write.new_samples[:1].copy()


class RivalWritesFirst:
    """The service's next write that expects anything of a template, once armed, is preceded by
    another replica's write of that template (through its own connection to the same
    database): sample id ``rival``, vector ``rival_vector(write)``, replacing what is there."""

    def __init__(self, store: TemplateStore, rival: SqliteTemplateStore) -> None:
        self._store = store
        self._rival = rival
        self.armed = False
        self.rival_vector: RivalVector = someone_else
        self.rival_template: Template | None = None
        self.expecting_writes = 0

    def save(self, write: TemplateWrite) -> Template:
        if write.expected is not None:
            self.expecting_writes += 1
            if self.armed:
                self.armed = False
                self.rival_template = self._rival.save(
                    TemplateWrite(
                        write.tenant,
                        write.subject_id,
                        write.modality,
                        write.model,
                        self.rival_vector(write),
                        replace=True,
                        sample_ids=["rival"],
                    )
                )
        return self._store.save(write)

    def close(self) -> None:
        self._rival.close()
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextmanager
def raced_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RivalWritesFirst]]:
    """Services built inside get their SQLite store wrapped in ``RivalWritesFirst`` (listed in
    build order)."""
    build_store = app_module.build_store
    stores: list[RivalWritesFirst] = []

    def raced_store(settings: Settings) -> TemplateStore:
        rival = SqliteTemplateStore(settings.sqlite_path)  # another replica's connection
        stores.append(RivalWritesFirst(build_store(settings), rival))
        return stores[-1]

    with monkeypatch.context() as patch:
        patch.setattr(app_module, "build_store", raced_store)
        yield stores


class SlowSaves:
    """Every write waits ``delay_s`` before it reaches the store, as on a loaded database: two
    enrolments arriving together then both search before either has written."""

    def __init__(self, store: TemplateStore, delay_s: float = 1.5) -> None:
        self._store = store
        self.delay_s = delay_s

    def save(self, write: TemplateWrite) -> Template:
        time.sleep(self.delay_s)
        return self._store.save(write)

    def close(self) -> None:
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextmanager
def slow_stores(monkeypatch: pytest.MonkeyPatch, delay_s: float = 1.5) -> Iterator[None]:
    """Services built inside write through ``SlowSaves``."""
    build_store = app_module.build_store
    with monkeypatch.context() as patch:
        patch.setattr(
            app_module, "build_store", lambda settings: SlowSaves(build_store(settings), delay_s)
        )
        yield
