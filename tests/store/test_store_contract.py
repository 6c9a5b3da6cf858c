"""The template-store contract, run against every real store engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bioverify.errors import ModelMismatch, NotEnrolled
from bioverify.store.ports import TemplateStore
from bioverify.store.sqlite_store import SqliteTemplateStore


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TemplateStore]:
    s: TemplateStore = SqliteTemplateStore(tmp_path / "t.sqlite3")
    yield s
    s.close()


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_save_and_get_template(store: TemplateStore) -> None:
    rng = np.random.default_rng(0)
    samples = unit(rng, 3)
    saved = store.save_template(
        tenant="t",
        subject_id="alice",
        modality="face",
        model="m1",
        new_samples=samples,
        metadata={"dept": "ops"},
        replace=False,
    )
    got = store.get_template("t", "alice", "face")
    assert got.model == "m1" and got.sample_count == 3
    np.testing.assert_allclose(got.samples, samples)
    np.testing.assert_allclose(got.vector, saved.vector)
    expected = samples.mean(axis=0)
    np.testing.assert_allclose(got.vector, expected / np.linalg.norm(expected), rtol=1e-5)
    assert np.linalg.norm(got.vector) == pytest.approx(1.0, abs=1e-5)


def test_extend_and_replace(store: TemplateStore) -> None:
    rng = np.random.default_rng(1)
    store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m1",
        new_samples=unit(rng, 2),
        metadata={},
        replace=False,
    )
    t = store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m1",
        new_samples=unit(rng, 1),
        metadata={"k": "v"},
        replace=False,
    )
    assert t.sample_count == 3
    t = store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m1",
        new_samples=unit(rng, 1),
        metadata={},
        replace=True,
    )
    assert t.sample_count == 1
    assert store.get_subject("t", "a").metadata == {"k": "v"}


def test_extending_with_another_model_is_refused_and_changes_nothing(store: TemplateStore) -> None:
    rng = np.random.default_rng(2)
    first = store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m1",
        new_samples=unit(rng, 2),
        metadata={"x": "1"},
        replace=False,
    )
    with pytest.raises(ModelMismatch):
        store.save_template(
            tenant="t",
            subject_id="a",
            modality="face",
            model="m2",
            new_samples=unit(rng, 1),
            metadata={"x": "2"},
            replace=False,
        )
    after = store.get_template("t", "a", "face")
    assert after.model == "m1" and after.sample_count == 2
    np.testing.assert_allclose(after.vector, first.vector)
    assert store.get_subject("t", "a").metadata == {"x": "1"}
    replaced = store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m2",
        new_samples=unit(rng, 1),
        metadata={},
        replace=True,
    )
    assert replaced.model == "m2"


def test_tenants_are_separate(store: TemplateStore) -> None:
    rng = np.random.default_rng(3)
    store.save_template(
        tenant="bank-a",
        subject_id="s",
        modality="face",
        model="m",
        new_samples=unit(rng, 1),
        metadata={},
        replace=False,
    )
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
        store.save_template(
            tenant="t",
            subject_id="a",
            modality=modality,
            model="m",
            new_samples=unit(rng, 2),
            metadata={},
            replace=False,
        )
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
        store.save_template(
            tenant="t",
            subject_id=sid,
            modality="face",
            model="m",
            new_samples=unit(rng, 1),
            metadata={},
            replace=False,
        )
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
    store.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m",
        new_samples=unit(rng, 1),
        metadata={},
        replace=False,
    )
    store.save_template(
        tenant="t",
        subject_id="b",
        modality="face",
        model="m",
        new_samples=unit(rng, 1),
        metadata={},
        replace=False,
    )
    changes = store.changes_since(0)
    assert [c.subject_id for c in changes] == ["a", "b"]
    assert store.changes_since(changes[0].seq)[0].subject_id == "b"


def test_concurrent_enroll_and_delete_end_consistent(store: TemplateStore) -> None:
    rng = np.random.default_rng(7)
    vectors = unit(rng, 40)
    errors: list[BaseException] = []

    def enroll() -> None:
        for v in vectors:
            store.save_template(
                tenant="t",
                subject_id="x",
                modality="face",
                model="m",
                new_samples=v[None],
                metadata={},
                replace=False,
            )

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


def test_data_survives_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    path = tmp_path / "durable.sqlite3"
    s = SqliteTemplateStore(path)
    s.save_template(
        tenant="t",
        subject_id="a",
        modality="face",
        model="m",
        new_samples=unit(rng, 1),
        metadata={},
        replace=False,
    )
    s.close()
    reopened = SqliteTemplateStore(path)
    assert reopened.get_template("t", "a", "face").sample_count == 1
    reopened.close()
