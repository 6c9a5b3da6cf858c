"""Deleting a subject erases its biometric data: not only from what the store answers, but
from the bytes it keeps (SQLite's database file and write-ahead log, Redis's keys)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from bioverify.errors import ConfigurationError
from bioverify.store.ports import TemplateStore, TemplateWrite
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sqlite_store import SqliteTemplateStore

RETENTION = 3


@pytest.fixture(params=["sqlite", "redis"])
def short_log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TemplateStore]:
    """A store whose change feed keeps only the newest RETENTION changes."""
    s: TemplateStore
    if request.param == "redis":
        s = RedisTemplateStore(request.getfixturevalue("redis_url"), change_retention=RETENTION)
    else:
        s = SqliteTemplateStore(tmp_path / "t.sqlite3", change_retention=RETENTION)
    yield s
    s.close()


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    rows: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return rows


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


def test_change_feed_keeps_the_newest_changes_only(short_log_store: TemplateStore) -> None:
    store = short_log_store
    rng = np.random.default_rng(3)
    assert store.pruned_seq() == 0
    enrol(store, "a", unit(rng, 1, 8))
    enrol(store, "b", unit(rng, 1, 8))
    assert store.pruned_seq() == 0 and len(store.changes_since(0)) == 2
    store.delete_subject("t", "a")
    enrol(store, "c", unit(rng, 1, 8))
    enrol(store, "d", unit(rng, 1, 8))
    latest = store.latest_seq()
    kept = store.changes_since(0)
    assert [c.seq for c in kept] == [latest - 2, latest - 1, latest]
    assert [(c.op, c.subject_id) for c in kept] == [
        ("delete", "a"),
        ("upsert", "c"),
        ("upsert", "d"),
    ]
    assert store.pruned_seq() == latest - RETENTION
    store.save_many([TemplateWrite("t", s, "face", "m", unit(rng, 1, 8)) for s in "efg"])
    assert [c.subject_id for c in store.changes_since(0)] == ["e", "f", "g"]
    assert "a" not in {c.subject_id for c in store.changes_since(0)}  # the deleted subject
    assert store.latest_seq() == store.pruned_seq() + RETENTION
    assert store.wait_for_changes(0, 0) == store.changes_since(0)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_change_retention_must_be_positive(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        if kind == "sqlite":
            SqliteTemplateStore(tmp_path / "t.sqlite3", change_retention=0)
        else:
            RedisTemplateStore("redis://127.0.0.1:1/0", change_retention=0)


def redis_values(url: str) -> bytes:
    """Every key and every value the Redis database holds, of whatever type, concatenated."""
    out: list[bytes] = []
    with redis.Redis.from_url(url) as raw:
        for key in raw.scan_iter(count=1000):
            out.append(key)
            kind = raw.type(key)
            value: Any
            if kind == b"string":
                out.append(raw.get(key) or b"")
            elif kind == b"hash":
                value = raw.hgetall(key)
                out += [*value.keys(), *value.values()]
            elif kind == b"zset":
                out += raw.zrange(key, 0, -1)
            elif kind == b"set":
                out += list(raw.smembers(key))
            elif kind == b"list":
                out += raw.lrange(key, 0, -1)
            elif kind == b"stream":
                for _, fields in raw.xrange(key):
                    out += [*fields.keys(), *fields.values()]
            else:
                raise AssertionError(f"key {key!r} of unexpected type {kind!r}")
    return b"".join(out)


def test_redis_keeps_nothing_of_a_deleted_subject_but_its_id_in_the_feed(redis_url: str) -> None:
    rng = np.random.default_rng(4)
    store = RedisTemplateStore(redis_url)
    try:
        samples = unit(rng, 3, 128)
        store.save(TemplateWrite("t", "victim", "face", "m", samples, {"branch": "b-17"}))
        store.save(TemplateWrite("t", "victim", "voice", "m", unit(rng, 1, 64)))
        enrol(store, "bystander", unit(rng, 2, 128))
        vector = store.get_template("t", "victim", "face").vector
        assert traces(redis_values(redis_url), samples, vector) == 1.0
        assert b"b-17" in redis_values(redis_url)
        store.delete_subject("t", "victim")
        after = redis_values(redis_url)
        assert traces(after, samples, vector) == 0
        assert b"b-17" not in after  # nor its metadata
        # Its id is left only in the change feed (the delete that followers apply).
        feed = b"".join(f"{c.op}{c.subject_id}".encode() for c in store.changes_since(0, 1_000_000))
        assert after.count(b"victim") == feed.count(b"victim")
        assert store.get_template("t", "bystander", "face").sample_count == 2
    finally:
        store.close()
