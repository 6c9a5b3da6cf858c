"""Deleting a subject erases its biometric data: not only from what the store answers, but
from the bytes it keeps (SQLite's database file and write-ahead log, Redis's keys)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bioverify.store.ports import TemplateStore, TemplateWrite
from bioverify.store.sqlite_store import SqliteTemplateStore


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def enrol(store: TemplateStore, subject_id: str, samples: np.ndarray) -> None:
    store.save(TemplateWrite("t", subject_id, "face", "m", samples))


def files_of(path: Path) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


def traces(raw: bytes, samples: np.ndarray, vector: np.ndarray) -> float:
    """The share of the embeddings' float32 bytes, in pieces of 8 values, that occur in
    ``raw`` (a row may be split over pages, a piece seldom is)."""
    pieces = np.concatenate([samples.ravel(), vector]).reshape(-1, 8)
    return sum(piece.tobytes() in raw for piece in pieces) / len(pieces)


@pytest.mark.parametrize("dim", [128, 512])  # a row within one page; one with overflow pages
@pytest.mark.parametrize("checkpointed", [False, True])  # in the WAL only; in the database file
def test_sqlite_delete_leaves_no_embedding_bytes_on_disk(
    tmp_path: Path, dim: int, checkpointed: bool
) -> None:
    rng = np.random.default_rng(dim)
    path = tmp_path / "bioverify.sqlite3"
    store = SqliteTemplateStore(path)
    try:
        samples = unit(rng, 3, dim)
        enrol(store, "victim", samples)
        enrol(store, "bystander", unit(rng, 2, dim))
        vector = store.get_template("t", "victim", "face").vector
        if checkpointed:
            with sqlite3.connect(path) as other:  # the WAL copied into the database file
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert traces(path.read_bytes(), samples, vector) > 0.9
        assert traces(files_of(path), samples, vector) > 0.9  # the test can see them
        store.delete_subject("t", "victim")
        assert traces(files_of(path), samples, vector) == 0
        assert store.get_template("t", "bystander", "face").sample_count == 2
    finally:
        store.close()
    assert traces(files_of(path), samples, vector) == 0


def test_sqlite_replaced_samples_do_not_outlive_the_next_delete(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "bioverify.sqlite3"
    store = SqliteTemplateStore(path)
    try:
        old = unit(rng, 2, 128)
        enrol(store, "a", old)
        old_vector = store.get_template("t", "a", "face").vector
        assert traces(files_of(path), old, old_vector) > 0.9
        store.save(TemplateWrite("t", "a", "face", "m", unit(rng, 1, 128), replace=True))
        enrol(store, "b", unit(rng, 1, 128))
        store.delete_subject("t", "b")  # any delete truncates the log of older writes
        assert traces(files_of(path), old, old_vector) == 0
    finally:
        store.close()


def test_sqlite_wal_kept_by_a_reader_is_truncated_after_the_next_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "bioverify.sqlite3"
    store = SqliteTemplateStore(path)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        samples = unit(rng, 2, 128)
        enrol(store, "victim", samples)
        vector = store.get_template("t", "victim", "face").vector
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM templates").fetchone()  # holds a snapshot
        store.delete_subject("t", "victim")
        assert "could not be truncated" in caplog.text
        assert traces(files_of(path), samples, vector) > 0  # the reader's snapshot needs them
        reader.execute("COMMIT")
        enrol(store, "next", unit(rng, 1, 128))
        assert traces(files_of(path), samples, vector) == 0
    finally:
        reader.close()
        store.close()
