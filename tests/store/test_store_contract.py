"""The template-store contract, run against every real store engine."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import redis

from bioverify.errors import InvalidInput, ModelMismatch, NotEnrolled, TemplateChanged
from bioverify.store.ports import (
    MAX_METADATA_ENTRIES,
    ExpectedTemplate,
    FeedPosition,
    Template,
    TemplateStore,
    TemplateWrite,
    check_metadata_entries,
    listing_bytes,
)
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sqlite_store import SqliteTemplateStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TemplateStore]:
    s: TemplateStore
    if request.param == "redis":
        s = RedisTemplateStore(request.getfixturevalue("redis_url"))
    else:
        s = SqliteTemplateStore(tmp_path / "t.sqlite3")
    yield s
    s.close()


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    rows: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return rows


def test_save_and_get_template(store: TemplateStore) -> None:
    rng = np.random.default_rng(0)
    samples = unit(rng, 3)
    saved = save(store, "alice", samples, model="m1", metadata={"dept": "ops"})
    got = store.get_template("t", "alice", "face")
    assert got.model == "m1" and got.sample_count == 3
    np.testing.assert_allclose(got.samples, samples)
    np.testing.assert_allclose(got.vector, saved.vector)
    expected = samples.mean(axis=0)
    np.testing.assert_allclose(got.vector, expected / np.linalg.norm(expected), rtol=1e-5)
    assert np.linalg.norm(got.vector) == pytest.approx(1.0, abs=1e-5)


def test_extend_and_replace(store: TemplateStore) -> None:
    rng = np.random.default_rng(1)
    save(store, "a", unit(rng, 2), model="m1")
    t = save(store, "a", unit(rng, 1), model="m1", metadata={"k": "v"})
    assert t.sample_count == 3
    t = save(store, "a", unit(rng, 1), model="m1", replace=True)
    assert t.sample_count == 1
    assert store.get_subject("t", "a").metadata == {"k": "v"}


def test_extending_with_another_model_is_refused_and_changes_nothing(store: TemplateStore) -> None:
    rng = np.random.default_rng(2)
    first = save(store, "a", unit(rng, 2), model="m1", metadata={"x": "1"})
    with pytest.raises(ModelMismatch):
        save(store, "a", unit(rng, 1), model="m2", metadata={"x": "2"})
    after = store.get_template("t", "a", "face")
    assert after.model == "m1" and after.sample_count == 2
    np.testing.assert_allclose(after.vector, first.vector)
    assert store.get_subject("t", "a").metadata == {"x": "1"}
    replaced = save(store, "a", unit(rng, 1), model="m2", replace=True)
    assert replaced.model == "m2"


def test_tenants_are_separate(store: TemplateStore) -> None:
    rng = np.random.default_rng(3)
    save(store, "s", unit(rng, 1), tenant="bank-a")
    with pytest.raises(NotEnrolled):
        store.get_template("bank-b", "s", "face")
    assert store.list_subjects("bank-b", limit=10) == []


def test_unknown_subject(store: TemplateStore) -> None:
    with pytest.raises(NotEnrolled):
        store.get_template("t", "nobody", "face")
    with pytest.raises(NotEnrolled):
        store.get_subject("t", "nobody")
    with pytest.raises(NotEnrolled):
        store.delete_subject("t", "nobody")


def test_delete_erases_every_template(store: TemplateStore) -> None:
    rng = np.random.default_rng(4)
    for modality in ("face", "voice"):
        save(store, "a", unit(rng, 2), modality=modality)
    assert store.delete_subject("t", "a") == 2
    for modality in ("face", "voice"):
        with pytest.raises(NotEnrolled):
            store.get_template("t", "a", modality)
    assert list(store.iter_templates("face")) == []
    ops = [(c.op, c.modality) for c in store.changes_since(0)]
    assert ops[-2:] == [("delete", "face"), ("delete", "voice")] or ops[-2:] == [
        ("delete", "voice"),
        ("delete", "face"),
    ]


def test_list_subjects_pages_in_order(store: TemplateStore) -> None:
    rng = np.random.default_rng(5)
    ids = [f"s{i:03d}" for i in range(25)]
    for sid in reversed(ids):
        save(store, sid, unit(rng, 1))
    seen: list[str] = []
    after = ""
    while True:
        page = store.list_subjects("t", limit=10, after=after)
        if not page:
            break
        seen.extend(s.subject_id for s in page)
        after = page[-1].subject_id
    assert seen == ids
    assert store.list_subjects("t", limit=5, modality="voice") == []


def test_change_feed_is_monotonic(store: TemplateStore) -> None:
    rng = np.random.default_rng(6)
    save(store, "a", unit(rng, 1))
    save(store, "b", unit(rng, 1))
    changes = store.changes_since(0)
    assert [c.subject_id for c in changes] == ["a", "b"]
    assert store.changes_since(changes[0].seq)[0].subject_id == "b"


def test_concurrent_enroll_and_delete_end_consistent(store: TemplateStore) -> None:
    rng = np.random.default_rng(7)
    vectors = unit(rng, 40)
    errors: list[BaseException] = []

    def enroll() -> None:
        for v in vectors:
            save(store, "x", v[None])

    def delete() -> None:
        for _ in range(40):
            try:
                store.delete_subject("t", "x")
            except NotEnrolled:
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=enroll), threading.Thread(target=delete)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    try:
        t = store.get_template("t", "x", "face")
    except NotEnrolled:
        assert all(s.subject_id != "x" for s in store.list_subjects("t", limit=10))
    else:
        assert 1 <= t.sample_count <= 40
        assert np.linalg.norm(t.vector) == pytest.approx(1.0, abs=1e-5)
        assert store.get_subject("t", "x").templates[0].sample_count == t.sample_count


def save(
    store: TemplateStore,
    subject_id: str,
    samples: np.ndarray,
    *,
    tenant: str = "t",
    modality: str = "face",
    model: str = "m",
    metadata: dict[str, str] | None = None,
    replace: bool = False,
    extra: dict[str, float] | None = None,
    sample_ids: Sequence[str] = (),
    expected: ExpectedTemplate | None = None,
) -> Template:
    return store.save(
        TemplateWrite(
            tenant=tenant,
            subject_id=subject_id,
            modality=modality,
            model=model,
            new_samples=samples,
            metadata=metadata or {},
            replace=replace,
            extra=extra,
            sample_ids=sample_ids,
            expected=expected,
        )
    )


def test_extra_is_summed_and_metadata_merged(store: TemplateStore) -> None:
    rng = np.random.default_rng(9)
    save(store, "a", unit(rng, 1), metadata={"x": "1", "y": "1"}, extra={"speech_s": 2.0})
    t = save(store, "a", unit(rng, 1), metadata={"y": "2"}, extra={"speech_s": 3.5, "n": 1.0})
    assert dict(t.extra) == {"speech_s": 5.5, "n": 1.0}
    assert dict(store.get_template("t", "a", "face").extra) == {"speech_s": 5.5, "n": 1.0}
    assert dict(store.get_subject("t", "a").metadata) == {"x": "1", "y": "2"}
    t = save(store, "a", unit(rng, 1), replace=True, extra={"speech_s": 1.0})
    assert dict(t.extra) == {"speech_s": 1.0}


def test_metadata_entries_are_capped_across_writes(store: TemplateStore) -> None:
    """A subject holds at most MAX_METADATA_ENTRIES metadata entries, all its writes (and
    modalities) together: a write that would add keys beyond them is refused whole."""
    rng = np.random.default_rng(14)
    first = {f"k{i:02d}": "1" for i in range(MAX_METADATA_ENTRIES - 4)}
    save(store, "a", unit(rng, 1), metadata=first)
    save(store, "a", unit(rng, 1), modality="voice", metadata={f"n{i}": "1" for i in range(4)})
    assert len(store.get_subject("t", "a").metadata) == MAX_METADATA_ENTRIES
    seq = store.latest_seq()
    for modality in ("face", "voice"):
        with pytest.raises(InvalidInput, match=f"{MAX_METADATA_ENTRIES + 1} metadata entries"):
            save(store, "a", unit(rng, 1), modality=modality, metadata={"k00": "2", "new": "1"})
    with pytest.raises(InvalidInput):
        store.save_many([TemplateWrite("t", "a", "face", "m", unit(rng, 1), {"other": "1"})])
    assert store.latest_seq() == seq  # nothing written
    assert store.get_template("t", "a", "face").sample_count == 1
    assert store.get_subject("t", "a").metadata["k00"] == "1"
    # new values for keys it holds, or no metadata at all, still go through
    save(store, "a", unit(rng, 1), metadata={"k00": "2", "n3": "2"})
    save(store, "a", unit(rng, 1), modality="voice", replace=True)
    metadata = store.get_subject("t", "a").metadata
    assert len(metadata) == MAX_METADATA_ENTRIES and metadata["k00"] == metadata["n3"] == "2"
    save(store, "b", unit(rng, 1), metadata={"new": "1"})  # other subjects are apart


def test_a_subject_over_the_metadata_cap_still_takes_writes_adding_no_key() -> None:
    """A subject stored with more entries by a version before the cap."""
    held = [f"k{i}" for i in range(MAX_METADATA_ENTRIES + 6)]
    vector = np.ones((1, 8), dtype=np.float32)
    for metadata in ({}, {"k0": "2", "k69": "2"}):
        check_metadata_entries(TemplateWrite("t", "a", "face", "m", vector, metadata), held)
    with pytest.raises(InvalidInput, match="71 metadata entries"):
        check_metadata_entries(TemplateWrite("t", "a", "face", "m", vector, {"x": "1"}), held)


def test_subject_summaries_and_timestamps(store: TemplateStore) -> None:
    rng = np.random.default_rng(10)
    first = save(store, "a", unit(rng, 2), modality="voice", model="v1")
    save(store, "a", unit(rng, 1), modality="face", model="f1")
    extended = save(store, "a", unit(rng, 1), modality="voice", model="v1")
    record = store.get_subject("t", "a")
    assert [(t.modality, t.model, t.sample_count) for t in record.templates] == [
        ("face", "f1", 1),
        ("voice", "v1", 3),
    ]
    assert extended.created_at == first.created_at
    assert record.templates[1].created_at == first.created_at
    assert record.templates[1].updated_at == extended.updated_at
    assert record.created_at <= record.updated_at


def test_list_subjects_by_modality_and_after(store: TemplateStore) -> None:
    rng = np.random.default_rng(11)
    save(store, "b", unit(rng, 1), modality="voice")
    save(store, "a", unit(rng, 1))
    save(store, "c", unit(rng, 1))
    save(store, "c", unit(rng, 1), modality="voice")
    assert [s.subject_id for s in store.list_subjects("t", limit=10, modality="voice")] == [
        "b",
        "c",
    ]
    assert [s.subject_id for s in store.list_subjects("t", limit=10, after="a")] == ["b", "c"]
    assert [s.subject_id for s in store.list_subjects("t", limit=1, after="b")] == ["c"]
    assert store.list_subjects("t", limit=10, after="c") == []
    store.delete_subject("t", "c")
    assert [s.subject_id for s in store.list_subjects("t", limit=10, modality="voice")] == ["b"]


def test_list_subjects_stops_reading_after_max_bytes(store: TemplateStore) -> None:
    """With ``max_bytes`` a listing stops after the subject that takes the listing_bytes of
    those read over it (never before the second), counted alike by every store: UTF-8 bytes
    of ids and metadata, 4-byte characters included."""
    rng = np.random.default_rng(13)
    wide = "\U0001f600"
    subjects = {
        "a": {"k": wide * 100},  # 1 + 1 + 400 bytes
        "b": {},  # 1
        "c": {"k" + wide: "v" * 97, "x": wide},  # 1 + 5 + 97 + 1 + 4 = 108
        "d": {"k": "v" * 10},
        wide: {},  # 4, last in id order
    }
    sizes = {sid: listing_bytes(sid, meta) for sid, meta in subjects.items()}
    assert sizes["a"] == 402 and sizes["c"] == 108
    for sid, meta in subjects.items():
        save(store, sid, unit(rng, 1), metadata=meta)
        if sid != "b":
            save(store, sid, unit(rng, 1), modality="voice")

    def listed(max_bytes: int, limit: int = 10, after: str = "", modality: str = "") -> str:
        page = store.list_subjects(
            "t", limit=limit, after=after, modality=modality, max_bytes=max_bytes
        )
        return "".join(s.subject_id for s in page)

    assert listed(0) == listed(10_000) == "abcd" + wide
    assert listed(1) == listed(402) == "ab"  # never fewer than two, however large
    assert listed(403) == listed(510) == "abc"  # 402 + 1 + 108 = 511: "c" passes them
    assert listed(511) == listed(522) == "abcd"  # 511 + 12 = 523
    assert listed(1, limit=1) == "a"  # limit still caps
    assert listed(1, after="d") == wide
    assert listed(100, after="b") == "cd"  # 108 alone passes 100: stops after the second
    assert listed(403, modality="voice") == "ac"  # subjects of the modality only
    assert store.list_subjects("t", limit=10, max_bytes=1)[0].metadata == subjects["a"]


def test_iter_templates_by_modality_and_model(store: TemplateStore) -> None:
    rng = np.random.default_rng(12)
    save(store, "a", unit(rng, 1), model="m1")
    save(store, "b", unit(rng, 2), model="m2")
    save(store, "c", unit(rng, 1), modality="voice", model="m1")
    assert sorted(t.subject_id for t in store.iter_templates("face")) == ["a", "b"]
    (b,) = store.iter_templates("face", "m2")
    assert b.subject_id == "b" and b.tenant == "t" and b.sample_count == 2
    np.testing.assert_allclose(b.vector, store.get_template("t", "b", "face").vector)
    save(store, "a", unit(rng, 1), model="m2", replace=True)
    assert list(store.iter_templates("face", "m1")) == []
    assert sorted(t.subject_id for t in store.iter_templates("face", "m2")) == ["a", "b"]
    assert [t.subject_id for t in store.iter_templates("voice")] == ["c"]


def test_ids_with_separators_do_not_collide(store: TemplateStore) -> None:
    rng = np.random.default_rng(13)
    save(store, "b:c", unit(rng, 1), tenant="a")
    save(store, "c", unit(rng, 2), tenant="a:b")
    save(store, "é 東京 %3A", unit(rng, 3), tenant="a")
    assert store.get_template("a", "b:c", "face").sample_count == 1
    assert store.get_template("a:b", "c", "face").sample_count == 2
    assert store.get_template("a", "é 東京 %3A", "face").sample_count == 3
    assert [s.subject_id for s in store.list_subjects("a", limit=10)] == ["b:c", "é 東京 %3A"]
    assert [s.subject_id for s in store.list_subjects("a:b", limit=10)] == ["c"]


def test_latest_seq_and_wait_for_changes(store: TemplateStore) -> None:
    rng = np.random.default_rng(14)
    assert store.latest_seq() == 0
    assert store.wait_for_changes(0, 0) == []
    save(store, "a", unit(rng, 1))
    save(store, "b", unit(rng, 1))
    changes = store.changes_since(0)
    assert store.latest_seq() == changes[-1].seq
    assert store.wait_for_changes(0, 5_000) == changes
    assert store.wait_for_changes(changes[0].seq, 5_000) == changes[1:]
    assert store.wait_for_changes(0, 5_000, limit=1) == changes[:1]
    started = time.monotonic()
    assert store.wait_for_changes(store.latest_seq(), 150) == []
    assert 0.1 <= time.monotonic() - started < 2.0


def test_feed_position_is_a_stable_epoch_and_the_latest_seq(store: TemplateStore) -> None:
    rng = np.random.default_rng(15)
    start = store.feed_position()
    assert start.seq == 0 and len(start.epoch) >= 16
    save(store, "a", unit(rng, 1))
    store.delete_subject("t", "a")
    now = store.feed_position()
    assert now == FeedPosition(start.epoch, store.latest_seq()) and now.seq == 2
    assert now.continues(start.epoch, start.seq) and now.continues(start.epoch, now.seq)
    assert not now.continues(start.epoch, now.seq + 1)  # the store went back
    assert not now.continues("another-epoch", 0) and not now.continues(None, 0)


def test_an_emptied_redis_gets_a_new_feed_epoch(redis_url: str) -> None:
    rng = np.random.default_rng(16)
    s = RedisTemplateStore(redis_url)
    try:
        save(s, "a", unit(rng, 1))
        before = s.feed_position()
        with redis.Redis.from_url(redis_url) as raw:
            raw.flushall()  # as a restart without persistence, or a failover to an empty one
        save(s, "b", unit(rng, 1))
        after = s.feed_position()
        assert after.seq == 1 and after.epoch != before.epoch
        assert s.feed_position() == after  # given once
        with redis.Redis.from_url(redis_url) as raw:
            raw.delete("bioverify:epoch")  # what an operator does after restoring a backup
        assert s.feed_position().epoch not in (before.epoch, after.epoch)
    finally:
        s.close()


def test_a_sqlite_database_keeps_its_feed_epoch_and_another_has_another(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    path = tmp_path / "a.sqlite3"
    s = SqliteTemplateStore(path)
    save(s, "a", unit(rng, 1))
    first = s.feed_position()
    s.close()
    with sqlite3.connect(path) as conn:  # a database made before epochs
        conn.execute("DROP TABLE meta")
    reopened = SqliteTemplateStore(path)
    given = reopened.feed_position()
    assert given.seq == 1 and given.epoch != first.epoch
    reopened.close()
    again = SqliteTemplateStore(path)
    assert again.feed_position() == given
    again.close()
    other = SqliteTemplateStore(tmp_path / "b.sqlite3")
    assert other.feed_position().epoch != given.epoch
    other.close()


def test_data_survives_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    path = tmp_path / "durable.sqlite3"
    s = SqliteTemplateStore(path)
    save(s, "a", unit(rng, 1))
    s.close()
    reopened = SqliteTemplateStore(path)
    assert reopened.get_template("t", "a", "face").sample_count == 1
    reopened.close()


def test_sample_ids_make_saves_idempotent(store: TemplateStore) -> None:
    rng = np.random.default_rng(11)
    a, b, c = unit(rng, 3)
    first = save(store, "i", np.stack([a, b]), sample_ids=["ha", "hb"])
    assert first.sample_ids == ("ha", "hb")
    again = save(store, "i", np.stack([b, c]), sample_ids=["hb", "hc"])
    assert again.sample_count == 3 and again.sample_ids == ("ha", "hb", "hc")
    got = store.get_template("t", "i", "face")
    assert got.sample_ids == ("ha", "hb", "hc") and got.sample_count == 3
    np.testing.assert_allclose(got.samples, np.stack([a, b, c]))
    replaced = save(store, "i", a[None], replace=True, sample_ids=["ha"])
    assert replaced.sample_count == 1 and replaced.sample_ids == ("ha",)


def test_samples_stored_under_legacy_ids_are_known(store: TemplateStore) -> None:
    """A template written before keyed ids holds plain hashes: a write naming a sample's plain
    hash as its legacy id does not add it again (nor its extra) and keys its id."""
    rng = np.random.default_rng(13)
    a, b, c = unit(rng, 3)
    save(store, "old", np.stack([a, b]), extra={"speech_s": 5.0}, sample_ids=["pa", "pb"])

    def resend(samples: np.ndarray, ids: list[str], legacy: list[str]) -> Template:
        return store.save(
            TemplateWrite(
                "t",
                "old",
                "face",
                "m",
                samples,
                sample_ids=ids,
                legacy_sample_ids=legacy,
                sample_extra=[{"speech_s": 2.0 + i} for i in range(len(ids))],
            )
        )

    again = resend(np.stack([a, b, c]), ["ka", "kb", "kc"], ["pa", "pb", "pc"])
    assert again.sample_count == 3 and again.sample_ids == ("ka", "kb", "kc")
    assert dict(again.extra) == {"speech_s": 5.0 + 4.0}  # only c's
    got = store.get_template("t", "old", "face")
    assert got.sample_ids == ("ka", "kb", "kc") and dict(got.extra) == {"speech_s": 9.0}
    np.testing.assert_allclose(got.samples, np.stack([a, b, c]))
    twice = resend(np.stack([a, a]), ["ka", "ka"], ["pa", "pa"])  # keyed ids known as before
    assert twice.sample_count == 3 and twice.sample_ids == ("ka", "kb", "kc")
    assert dict(twice.extra) == {"speech_s": 9.0}


def test_save_many_is_save_in_order(store: TemplateStore) -> None:
    rng = np.random.default_rng(12)
    a, b, c, d = unit(rng, 4)
    before = store.latest_seq()
    assert store.save_many([]) == []
    saved = store.save_many(
        [
            TemplateWrite("t", "x", "face", "m", a[None], {"k": "1"}, sample_ids=["ha"]),
            TemplateWrite("t", "y", "face", "m", b[None]),
            # the same subject again in one batch extends it, in order, idempotently
            TemplateWrite("t", "x", "face", "m", np.stack([a, c]), sample_ids=["ha", "hc"]),
            TemplateWrite("u", "x", "voice", "v", d[None], extra={"speech_s": 2.0}),
        ]
    )
    assert [(t.tenant, t.subject_id, t.sample_count) for t in saved] == [
        ("t", "x", 1),
        ("t", "y", 1),
        ("t", "x", 2),
        ("u", "x", 1),
    ]
    x = store.get_template("t", "x", "face")
    assert x.sample_ids == ("ha", "hc")
    np.testing.assert_allclose(x.samples, np.stack([a, c]))
    np.testing.assert_allclose(x.vector, saved[2].vector, rtol=1e-6)
    assert store.get_subject("t", "x").metadata == {"k": "1"}
    assert store.get_template("u", "x", "voice").extra == {"speech_s": 2.0}
    changes = store.changes_since(before)
    assert [(c.tenant, c.subject_id, c.modality) for c in changes] == [
        ("t", "x", "face"),
        ("t", "y", "face"),
        ("t", "x", "face"),
        ("u", "x", "voice"),
    ]
    assert sorted(t.subject_id for t in store.iter_templates("face", "m")) == ["x", "y"]


def test_save_many_refuses_another_model(store: TemplateStore) -> None:
    rng = np.random.default_rng(13)
    a, b = unit(rng, 2)
    save(store, "x", a[None], model="m1")
    with pytest.raises(ModelMismatch):
        store.save_many([TemplateWrite("t", "x", "face", "m2", b[None])])
    assert store.get_template("t", "x", "face").model == "m1"
    (replaced,) = store.save_many([TemplateWrite("t", "x", "face", "m2", b[None], replace=True)])
    assert replaced.model == "m2" and store.get_template("t", "x", "face").model == "m2"


ABSENT = ExpectedTemplate(None)


def assert_unchanged(store: TemplateStore, before: Template, seq: int) -> None:
    """The template is still ``before`` and the change feed has nothing after ``seq``."""
    after = store.get_template(before.tenant, before.subject_id, before.modality)
    assert after.revision == before.revision and after.sample_ids == before.sample_ids
    np.testing.assert_array_equal(after.samples, before.samples)
    assert store.latest_seq() == seq and store.changes_since(seq) == []


def test_every_write_gives_the_template_a_new_revision(store: TemplateStore) -> None:
    rng = np.random.default_rng(20)
    first = save(store, "a", unit(rng, 1))
    assert first.revision > 0 and store.get_template("t", "a", "face").revision == first.revision
    other = save(store, "b", unit(rng, 1))
    extended = save(store, "a", unit(rng, 1))
    replaced = save(store, "a", unit(rng, 1), replace=True)
    assert first.revision < other.revision < extended.revision < replaced.revision
    (a,) = [t for t in store.iter_templates("face") if t.subject_id == "a"]
    assert a.revision == replaced.revision == store.get_template("t", "a", "face").revision
    # Deleted and enrolled again: a new revision, never the old one.
    store.delete_subject("t", "a")
    again = save(store, "a", unit(rng, 1))
    assert again.revision > replaced.revision
    (saved,) = store.save_many([TemplateWrite("t", "c", "face", "m", unit(rng, 1))])
    assert saved.revision == store.get_template("t", "c", "face").revision > again.revision


def test_a_write_expecting_no_template_is_refused_when_there_is_one(
    store: TemplateStore,
) -> None:
    rng = np.random.default_rng(21)
    first = save(store, "a", unit(rng, 2), metadata={"k": "1"}, expected=ABSENT)
    assert first.sample_count == 2
    seq = store.latest_seq()
    for replace in (False, True):
        with pytest.raises(TemplateChanged) as info:
            save(store, "a", unit(rng, 1), metadata={"k": "2"}, replace=replace, expected=ABSENT)
        assert "subject 'a'" in str(info.value) and "retry" in str(info.value)
        assert_unchanged(store, first, seq)
        assert store.get_subject("t", "a").metadata == {"k": "1"}
    # Another modality or tenant of the subject is another template.
    assert save(store, "a", unit(rng, 1), modality="voice", expected=ABSENT).sample_count == 1
    assert save(store, "a", unit(rng, 1), tenant="u", expected=ABSENT).sample_count == 1


def test_a_write_expecting_a_revision_is_refused_after_another_write(
    store: TemplateStore,
) -> None:
    rng = np.random.default_rng(22)
    read = save(store, "a", unit(rng, 1))
    save(store, "a", unit(rng, 1), modality="voice")  # the subject's other template
    extended = save(store, "a", unit(rng, 1), expected=ExpectedTemplate.of(read))
    assert extended.sample_count == 2
    seq = store.latest_seq()
    for replace in (False, True):  # written over since it was read
        with pytest.raises(TemplateChanged):
            save(store, "a", unit(rng, 1), replace=replace, expected=ExpectedTemplate.of(read))
        assert_unchanged(store, extended, seq)
    with pytest.raises(TemplateChanged):  # it exists now
        save(store, "a", unit(rng, 1), expected=ABSENT)
    store.delete_subject("t", "a")
    with pytest.raises(TemplateChanged):  # deleted since it was read
        save(store, "a", unit(rng, 1), expected=ExpectedTemplate.of(extended))
    with pytest.raises(NotEnrolled):
        store.get_template("t", "a", "face")
    again = save(store, "a", unit(rng, 1))
    with pytest.raises(TemplateChanged):  # deleted and enrolled again
        save(store, "a", unit(rng, 1), expected=ExpectedTemplate.of(extended))
    replaced = save(store, "a", unit(rng, 1), replace=True, expected=ExpectedTemplate.of(again))
    assert replaced.sample_count == 1 and replaced.revision > again.revision


def test_concurrent_writes_expecting_one_revision_save_exactly_one(store: TemplateStore) -> None:
    rng = np.random.default_rng(23)
    read = save(store, "a", unit(rng, 1))
    vectors = unit(rng, 6)
    start = threading.Barrier(len(vectors))
    won: list[Template] = []
    lost: list[BaseException] = []

    def write(v: np.ndarray) -> None:
        start.wait()
        try:
            won.append(save(store, "a", v[None], expected=ExpectedTemplate.of(read)))
        except BaseException as exc:
            lost.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in vectors]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(won) == 1 and all(isinstance(e, TemplateChanged) for e in lost), lost
    got = store.get_template("t", "a", "face")
    assert got.sample_count == 2 and got.revision == won[0].revision
    assert store.latest_seq() == won[0].revision


def test_save_many_with_one_failed_expectation_saves_nothing(store: TemplateStore) -> None:
    rng = np.random.default_rng(24)
    present = save(store, "y", unit(rng, 1))
    seq = store.latest_seq()
    a, b, c = unit(rng, 3)
    batches = [
        # a write to another subject before the one that fails
        [
            TemplateWrite("t", "x", "face", "m", a[None]),
            TemplateWrite("t", "y", "face", "m", b[None], expected=ABSENT),
        ],
        # an expectation of a template that an earlier write of the batch makes
        [
            TemplateWrite("t", "x", "face", "m", a[None], expected=ABSENT),
            TemplateWrite("t", "x", "face", "m", c[None], expected=ABSENT),
        ],
    ]
    for batch in batches:
        with pytest.raises(TemplateChanged):
            store.save_many(batch)
        with pytest.raises(NotEnrolled):
            store.get_template("t", "x", "face")
        assert_unchanged(store, present, seq)
    saved = store.save_many(
        [
            TemplateWrite("t", "x", "face", "m", a[None], expected=ABSENT),
            TemplateWrite("t", "y", "face", "m", b[None], expected=ExpectedTemplate.of(present)),
        ]
    )
    assert [t.sample_count for t in saved] == [1, 2]


def test_a_sqlite_database_without_revisions_is_migrated_on_open(tmp_path: Path) -> None:
    rng = np.random.default_rng(25)
    path = tmp_path / "old.sqlite3"
    s = SqliteTemplateStore(path)
    save(s, "a", unit(rng, 2), sample_ids=["ha", "hb"])
    s.close()
    with sqlite3.connect(path) as conn:  # the templates table of the first version
        for column in ("revision", "sample_ids"):
            conn.execute(f"ALTER TABLE templates DROP COLUMN {column}")
    s = SqliteTemplateStore(path)
    old = s.get_template("t", "a", "face")
    assert old.revision == 0 and old.sample_count == 2 and old.sample_ids == ()
    with pytest.raises(TemplateChanged):
        save(s, "a", unit(rng, 1), expected=ABSENT)
    written = save(s, "a", unit(rng, 1), expected=ExpectedTemplate.of(old))
    assert written.revision > 0 and written.sample_count == 3
    s.close()
    reopened = SqliteTemplateStore(path)  # migrated once: opening again changes nothing
    assert reopened.get_template("t", "a", "face").revision == written.revision
    reopened.close()


def test_a_redis_template_without_a_revision_is_revision_0(redis_url: str) -> None:
    rng = np.random.default_rng(26)
    s = RedisTemplateStore(redis_url)
    save(s, "a", unit(rng, 1))
    with redis.Redis.from_url(redis_url) as raw:  # as a replica of an older version writes it
        assert raw.hdel("bioverify:tpl:t:face:a", "rev") == 1
    old = s.get_template("t", "a", "face")
    assert old.revision == 0
    with pytest.raises(TemplateChanged):
        save(s, "a", unit(rng, 1), expected=ABSENT)
    written = save(s, "a", unit(rng, 1), expected=ExpectedTemplate.of(old))
    assert written.revision > 0 and s.get_template("t", "a", "face").revision == written.revision
    s.close()
