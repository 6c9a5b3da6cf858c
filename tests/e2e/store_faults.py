"""Fault injectors around a service's template store (what no user would run): they let a test
put another replica's write between an enrolment's read of a template and its own write."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from typing import Any, TypeVar, cast

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


class StoreFault:
    """A service's store with its ``save`` changed by a subclass; everything else as it is."""

    def __init__(self, store: TemplateStore) -> None:
        self._store = store

    def save(self, write: TemplateWrite) -> Template:
        return self._store.save(write)

    def close(self) -> None:
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


S = TypeVar("S", bound=StoreFault)


@contextmanager
def faulty_stores(
    monkeypatch: pytest.MonkeyPatch, wrap: Callable[[TemplateStore, Settings], S]
) -> Iterator[list[S]]:
    """Services built inside get their store wrapped by ``wrap`` (listed in build order)."""
    build_store = app_module.build_store
    stores: list[S] = []

    def faulty_store(settings: Settings, **options: Any) -> TemplateStore:
        stores.append(wrap(build_store(settings, **options), settings))
        return cast(TemplateStore, stores[-1])

    with monkeypatch.context() as patch:
        patch.setattr(app_module, "build_store", faulty_store)
        yield stores


class RivalWritesFirst(StoreFault):
    """The service's next write that expects anything of a template, once armed, is preceded by
    another replica's write of that template (through its own connection to the same
    database): sample id ``rival``, vector ``rival_vector(write)``, replacing what is there."""

    def __init__(self, store: TemplateStore, rival: SqliteTemplateStore) -> None:
        super().__init__(store)
        self._rival = rival
        self.armed = False
        self.rival_vector: RivalVector = someone_else
        self.rival_template: Template | None = None

    def save(self, write: TemplateWrite) -> Template:
        if write.expected is not None and self.armed:
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
        return super().save(write)

    def close(self) -> None:
        self._rival.close()
        super().close()


def raced_stores(monkeypatch: pytest.MonkeyPatch) -> ContextManager[list[RivalWritesFirst]]:
    """Services built inside get their SQLite store wrapped in ``RivalWritesFirst``, the rival
    writing through another connection to the same database (another replica's)."""
    return faulty_stores(
        monkeypatch,
        lambda store, settings: RivalWritesFirst(store, SqliteTemplateStore(settings.sqlite_path)),
    )


class SlowSaves(StoreFault):
    """Every write waits ``delay_s`` before it reaches the store, as on a loaded database: two
    enrolments arriving together then both search before either has written."""

    def __init__(self, store: TemplateStore, delay_s: float = 1.5) -> None:
        super().__init__(store)
        self.delay_s = delay_s

    def save(self, write: TemplateWrite) -> Template:
        time.sleep(self.delay_s)
        return super().save(write)


def slow_stores(monkeypatch: pytest.MonkeyPatch) -> ContextManager[list[SlowSaves]]:
    """Services built inside write through ``SlowSaves``."""
    return faulty_stores(monkeypatch, lambda store, _: SlowSaves(store))
